using Kosmos2.ServiceDefaults;

namespace Kosmos2.DecoderWorker;

/// <summary>Registers the decoder worker's services.</summary>
public static class DecoderWorkerExtensions
{
    public static WebApplicationBuilder AddDecoderWorker(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<DecoderWorkerOptions>(builder.Configuration.GetSection(DecoderWorkerOptions.SectionName));
        builder.Services.AddHostedService<DecoderStartup>();
        return builder;
    }
}

/// <summary>Readiness of the decoder worker. Until the engine lands, nothing to load.</summary>
internal sealed class DecoderStartup(ReadinessGate readiness) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.MarkReady();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
