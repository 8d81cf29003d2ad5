using Grpc.AspNetCore.Server;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.FileProviders;

namespace Kosmos2.Gateway.Web;

/// <summary>
/// The gateway's HTTP face on <c>Service:HttpPort</c> (HTTP/1.1; the JSON routes also answer HTTP/2 on the gRPC port):
/// the public service as HTTP/JSON (gRPC JSON transcoding of the
/// <c>google.api.http</c> options in kosmos2.proto) and the single web page at <c>/</c> (wwwroot, no build step).
/// Transcoding rather than gRPC-Web: curl and a browser's <c>fetch</c> need nothing but JSON, and server streams arrive
/// as line-delimited JSON a page reads message by message; the calls run through the same interceptors (API key,
/// limits, outcome counting) as gRPC, and a refused call answers the mapped HTTP status with <c>{code, message}</c>.
/// </summary>
public static class WebExtensions
{
    public static WebApplicationBuilder AddGatewayWeb(this WebApplicationBuilder builder)
    {
        // Not builder.Services.AddGrpc(): a second AddGrpc() brings back grpc-dotnet's default binder, which
        // MalformedRequestGuard replaced; transcoding only needs the builder's service collection.
        new ServicesOnly(builder.Services).AddJsonTranscoding();
        return builder;
    }

    /// <summary>Serves the page and its files; the transcoded routes come with <c>MapGrpcService</c>.</summary>
    public static WebApplication MapGatewayWeb(this WebApplication app)
    {
        var options = app.Configuration.GetSection(ServiceOptions.SectionName).Get<ServiceOptions>() ?? new ServiceOptions();
        if (options.HttpPort <= 0)
        {
            return app;
        }
        // Beside the assembly, so the page is found whatever the working directory (kosmos2 up, the container).
        var files = new PhysicalFileProvider(Path.Combine(AppContext.BaseDirectory, "wwwroot"));
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            // The page is small and changes with the gateway: always revalidate, never serve a stale script.
            OnPrepareResponse = ctx => ctx.Context.Response.Headers.CacheControl = "no-cache",
        });
        return app;
    }

    private sealed class ServicesOnly(IServiceCollection services) : IGrpcServerBuilder
    {
        public IServiceCollection Services => services;
    }
}
