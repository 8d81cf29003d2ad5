using Kosmos2.ServiceDefaults;

namespace Kosmos2.VisionWorker;

/// <summary>Registers the vision worker's services.</summary>
public static class VisionWorkerExtensions
{
    public static WebApplicationBuilder AddVisionWorker(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<VisionWorkerOptions>(builder.Configuration.GetSection(VisionWorkerOptions.SectionName));
        builder.Services.AddHostedService<VisionStartup>();
        return builder;
    }
}

/// <summary>Readiness of the vision worker. Until the encoder lands, nothing to load.</summary>
internal sealed class VisionStartup(ReadinessGate readiness) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.MarkReady();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
