using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Kosmos2.Launch;

/// <summary>Waits for a service to answer <c>grpc.health.v1.Health/Check</c> with SERVING.</summary>
public static class HealthProbe
{
    /// <summary>
    /// Polls <paramref name="address"/> every 100 ms until it reports SERVING. Not listening yet and still loading are
    /// "not yet"; <paramref name="keepWaiting"/> may end the wait early by throwing (the process died).
    /// </summary>
    public static async Task WaitServingAsync(string address, CancellationToken cancellationToken, Func<bool>? keepWaiting = null)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var health = new Health.HealthClient(channel);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            keepWaiting?.Invoke();
            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }
            }
            catch (RpcException) when (!cancellationToken.IsCancellationRequested)
            {
                // Not listening yet, or loading: try again.
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }
}
