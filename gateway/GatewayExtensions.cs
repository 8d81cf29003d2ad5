using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Routing;
using Kosmos2.Gateway.Sessions;
using Kosmos2.Gateway.Web;

namespace Kosmos2.Gateway;

/// <summary>Registers the gateway's services.</summary>
public static class GatewayExtensions
{
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<GatewayOptions>(builder.Configuration.GetSection(GatewayOptions.SectionName));
        builder.Services.AddHostedService<GatewayStartup>();

        // A request may carry a whole image: let it through to validation, which names the limit, instead of
        // gRPC's 4 MB default rejecting it with a generic RESOURCE_EXHAUSTED.
        var options = builder.Configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
        var maxRequestBytes = options.MaxImageBytes * 2 + (1 << 20);
        builder.Services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<Kosmos2ApiService>>(o =>
            o.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, maxRequestBytes));

        // Kestrel's own bound on a request body (HTTP/JSON calls; gRPC applies MaxReceiveMessageSize instead): the same
        // bound, room for base64's 4/3 of one image and the other fields, not Kestrel's default of 30 MB whatever the image limit.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = maxRequestBytes);

        builder.Services.AddSingleton<Generation.RequestOutcomeInterceptor>();
        builder.Services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<Kosmos2ApiService>>(o => o.Interceptors.Add<Generation.RequestOutcomeInterceptor>());
        builder.AddGatewayAuth();
        builder.AddGatewayRouting();
        builder.AddGatewaySessions();
        builder.Services.AddSingleton<Generation.GatewayTokenizer>();
        builder.Services.AddSingleton<Generation.GatewayMetrics>();
        builder.Services.AddSingleton<Generation.GenerationRunner>();
        builder.Services.AddSingleton<Generation.GenerateResults>();
        builder.Services.AddSingleton<Generation.GenerateHandler>();
        builder.Services.AddSingleton<ChatHandler>();
        builder.AddGatewayWeb();
        return builder;
    }

    /// <summary>Maps the public service (gRPC and its HTTP/JSON form) and the web page.</summary>
    public static WebApplication MapGateway(this WebApplication app)
    {
        app.MapGatewayWeb();
        app.UseGatewayAuth();
        app.MapGrpcService<Kosmos2ApiService>();
        return app;
    }
}
