using System.Diagnostics.Metrics;
using Kosmos2.DecoderWorker.Hosting;
using Kosmos2.Model;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.DecoderWorker;

/// <summary>Registers the decoder worker's services.</summary>
public static class DecoderWorkerExtensions
{
    public static WebApplicationBuilder AddDecoderWorker(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(DecoderWorkerOptions.SectionName).Get<DecoderWorkerOptions>() ?? new DecoderWorkerOptions();
        ModelSource.Validate(options, DecoderWorkerOptions.SectionName);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<EngineHost>();
        builder.Services.AddSingleton(sp => new DecoderMetrics(new Meter(DecoderMetrics.MeterName), sp.GetRequiredService<EngineHost>()));
        builder.Services.AddHostedService<DecoderStartup>();
        return builder;
    }
}

/// <summary>
/// Starts the engine thread; ready only after load and warm-up; NOT_SERVING again while the loop is stuck with work
/// pending. A model that cannot load stops the process (an orchestrator restarts it; `kosmos2 up` reports it).
/// On SIGTERM the engine stops admitting before Kestrel drains: requests still queued are answered UNAVAILABLE at once
/// (the gateway offers them to another decoder), so the drain window covers only running streams.
/// </summary>
internal sealed class DecoderStartup(EngineHost host, DecoderMetrics metrics, ReadinessGate readiness,
    IHostApplicationLifetime lifetime, ILogger<DecoderStartup> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = metrics; // created now so its instruments exist before the first request
        readiness.AddProbe(host.StallReason);
        lifetime.ApplicationStopping.Register(host.StopAdmitting);
        host.Start();
        return readiness.GateReadinessAsync(host.Ready, "Decoder worker", lifetime, logger, stoppingToken);
    }
}
