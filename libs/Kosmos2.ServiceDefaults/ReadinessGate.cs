using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// The service's own word on whether it can serve: NOT_SERVING until <see cref="MarkReady"/> (weights
/// loaded and warm-up passed), and again whenever a registered liveness probe says the service stalled.
/// Exposed through <c>grpc.health.v1</c>.
/// </summary>
public sealed class ReadinessGate : IHealthCheck
{
    private volatile string _notReadyReason = "starting";
    private readonly List<Func<string?>> _probes = [];
    private readonly Lock _probesLock = new();

    public bool IsReady => _notReadyReason.Length == 0 && CurrentProbeFailure() is null;

    /// <summary>Marks the service ready.</summary>
    public void MarkReady() => _notReadyReason = "";

    /// <summary>Marks the service not ready, with the reason health checks report.</summary>
    public void MarkNotReady(string reason) => _notReadyReason = string.IsNullOrEmpty(reason) ? "not ready" : reason;

    /// <summary>Adds a probe that returns a reason while the service must report NOT_SERVING, else null.</summary>
    public void AddProbe(Func<string?> probe)
    {
        lock (_probesLock)
        {
            _probes.Add(probe);
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var reason = _notReadyReason.Length > 0 ? _notReadyReason : CurrentProbeFailure();
        return Task.FromResult(reason is null ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(reason));
    }

    private string? CurrentProbeFailure()
    {
        lock (_probesLock)
        {
            foreach (var probe in _probes)
            {
                if (probe() is { } failure)
                {
                    return failure;
                }
            }
        }
        return null;
    }
}

/// <summary>The start-up rule of the model workers, in one place.</summary>
public static partial class ModelStartup
{
    /// <summary>
    /// NOT_SERVING until <paramref name="loaded"/> (weights loaded and warm-up passed) completes, then ready. A model that
    /// cannot load stops the process with exit code 1: an orchestrator restarts it and `kosmos2 up` reports it.
    /// </summary>
    public static async Task GateReadinessAsync(this ReadinessGate readiness, Task loaded, string service,
        IHostApplicationLifetime lifetime, ILogger logger, CancellationToken stoppingToken)
    {
        readiness.MarkNotReady($"{service}: loading the model");
        try
        {
            await loaded.WaitAsync(stoppingToken).ConfigureAwait(false);
            readiness.MarkReady();
            LogReady(logger, service);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogFailed(logger, service, ex.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Service} ready")]
    private static partial void LogReady(ILogger logger, string service);

    [LoggerMessage(Level = LogLevel.Critical, Message = "{Service} cannot serve: {Reason}")]
    private static partial void LogFailed(ILogger logger, string service, string reason);
}
