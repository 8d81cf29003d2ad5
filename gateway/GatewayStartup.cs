using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway;

/// <summary>The gateway holds no model: it is ready as soon as it listens.</summary>
internal sealed class GatewayStartup(ReadinessGate readiness) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.MarkReady();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
