using Grpc.Net.Client;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// Connects both pools in the background from startup, so workers are resolved and counted (GetInfo) before the
/// first request, and the first request does not pay for the connection. Never blocks startup: the gateway is up
/// even while no worker is.
/// </summary>
internal sealed partial class WorkerPoolConnector(VisionPool vision, DecoderPool decoders, ILogger<WorkerPoolConnector> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(ConnectAsync("vision", vision.Target, vision.Channel, stoppingToken),
                     ConnectAsync("decoder", decoders.Target, decoders.Channel, stoppingToken));

    private async Task ConnectAsync(string pool, WorkerTarget? target, GrpcChannel? channel, CancellationToken stoppingToken)
    {
        if (target is null || channel is null)
        {
            LogNotConfigured(logger, pool);
            return;
        }
        LogTarget(logger, pool, target.StaticAddresses is { } list ? string.Join(", ", list) : target.ChannelAddress.ToString());
        try
        {
            await channel.ConnectAsync(stoppingToken).ConfigureAwait(false);
            LogConnected(logger, pool);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogConnectFailed(logger, ex, pool);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No {Pool} workers are configured: calls that need one fail with UNAVAILABLE.")]
    private static partial void LogNotConfigured(ILogger logger, string pool);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Pool} workers: {Target}.")]
    private static partial void LogTarget(ILogger logger, string pool, string target);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected to a {Pool} worker.")]
    private static partial void LogConnected(ILogger logger, string pool);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connecting to the {Pool} workers failed; calls will try again.")]
    private static partial void LogConnectFailed(ILogger logger, Exception exception, string pool);
}
