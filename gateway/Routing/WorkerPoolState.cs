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

    internal void SetKnown(int count) => Volatile.Write(ref _known, count);

    internal void SetReady(int count) => Volatile.Write(ref _ready, count);
}
