using System.Diagnostics.Metrics;
using Kosmos2.DecoderWorker.Engine;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.DecoderWorker;

/// <summary>Registers the decoder worker's services.</summary>
public static class DecoderWorkerExtensions
{
    public static WebApplicationBuilder AddDecoderWorker(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(DecoderWorkerOptions.SectionName).Get<DecoderWorkerOptions>() ?? new DecoderWorkerOptions();
        if (string.IsNullOrWhiteSpace(options.ModelDir) && string.IsNullOrWhiteSpace(options.RandomInit))
        {
            throw new InvalidOperationException("Decoder:ModelDir is not set: point it at a kosmos-2-patch14-224 checkpoint folder (environment Decoder__ModelDir), or set Decoder:RandomInit for random weights.");
        }
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
/// </summary>
internal sealed partial class DecoderStartup(EngineHost host, DecoderMetrics metrics, ReadinessGate readiness,
    IHostApplicationLifetime lifetime, ILogger<DecoderStartup> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = metrics; // created now so its instruments exist before the first request
        readiness.MarkNotReady("loading the decoder");
        readiness.AddProbe(host.StallReason);
        host.Start();
        try
        {
            await host.Ready.WaitAsync(stoppingToken).ConfigureAwait(false);
            readiness.MarkReady();
            LogReady(logger);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogFailed(logger, ex.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Decoder worker ready")]
    private static partial void LogReady(ILogger logger);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Decoder worker cannot serve: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
