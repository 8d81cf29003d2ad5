using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Routing;

/// <summary>Registers the worker pools.</summary>
public static class RoutingExtensions
{
    /// <summary>Adds <see cref="VisionPool"/> and <see cref="DecoderPool"/> (from <c>Gateway:VisionWorkers</c> and
    /// <c>Gateway:DecoderWorkers</c>) and starts connecting to them at startup. Every worker call carries the internal
    /// secret (<c>Internal:Secret</c> or <c>Internal:SecretFile</c>) when one is set.</summary>
    public static WebApplicationBuilder AddGatewayRouting(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton(InternalSecrets.Load(builder.Configuration));
        builder.Services.AddSingleton<VisionPool>();
        builder.Services.AddSingleton<DecoderPool>();
        builder.Services.AddHostedService<WorkerPoolConnector>();
        return builder;
    }
}
