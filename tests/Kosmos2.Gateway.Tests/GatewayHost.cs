using Grpc.Net.Client;
using Kosmos2.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// The real gateway (the same calls as its Program.cs) on real Kestrel, on a free loopback port, configured by
/// in-memory settings that override appsettings.json.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private GatewayHost(WebApplication app, int port)
    {
        App = app;
        Url = $"http://127.0.0.1:{port}";
        Channel = GrpcChannel.ForAddress(Url);
    }

    public WebApplication App { get; }

    /// <summary>The gRPC port's address, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Url { get; }

    public GrpcChannel Channel { get; }

    public IServiceProvider Services => App.Services;

    public static async Task<GatewayHost> StartAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var port = FreePort.Next();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
        });
        var all = new Dictionary<string, string?>
        {
            ["Service:Host"] = "127.0.0.1",
            ["Service:Port"] = port.ToString(),
            ["Service:MetricsPort"] = "0",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }
        builder.Configuration.AddInMemoryCollection(all);
        builder.AddServiceDefaults("kosmos2-gateway-test");
        builder.AddGateway();
        var app = builder.Build();
        app.MapServiceDefaults();
        app.MapGateway();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new GatewayHost(app, port);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
