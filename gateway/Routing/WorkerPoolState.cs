using Grpc.Net.Client;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Routing;

/// <summary>What a pool's balancer knows about its workers, for GetInfo and logs.</summary>
public sealed class WorkerPoolState
{
    private int _known;
    private int _ready;

    /// <summary>Addresses the resolver returned last (pods behind the headless Service, or the static list).</summary>
    public int Known => Volatile.Read(ref _known);

    /// <summary>Workers with a connected subchannel now.</summary>
    public int Ready => Volatile.Read(ref _ready);

    /// <summary>
    /// Returns once a worker of <paramref name="channel"/>'s pool is ready, asking the channel to connect; UNAVAILABLE
    /// when none is within <paramref name="wait"/>. Calls check this first so that a pool whose workers are all down
    /// (killed, restarting) answers within the wait instead of holding the call for its whole deadline, while a worker
    /// that is only reconnecting still gets the call.
    /// </summary>
    public async Task EnsureReadyAsync(GrpcChannel channel, TimeSpan wait, string pool, CancellationToken cancellationToken)
    {
        if (Ready > 0)
        {
            return;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            await channel.ConnectAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            RpcErrors.Unavailable($"No {pool} worker is ready ({Known} known, waited {wait.TotalSeconds:0.#} s): retry shortly.");
        }
    }

    internal void SetKnown(int count) => Volatile.Write(ref _known, count);

    internal void SetReady(int count) => Volatile.Write(ref _ready, count);
}
