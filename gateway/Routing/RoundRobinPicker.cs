using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// Round robin over ready vision workers: Encode calls are short and alike, so rotation spreads them as well as
/// counting would. Ours rather than grpc-dotnet's <c>round_robin</c> so the pool can report its worker counts.
/// </summary>
internal sealed class RoundRobinPicker(IReadOnlyList<Subchannel> readySubchannels) : SubchannelPicker
{
    private readonly Subchannel[] _subchannels = [.. readySubchannels];
    private int _next = Random.Shared.Next();

    public override PickResult Pick(PickContext context)
    {
        var i = (int)((uint)Interlocked.Increment(ref _next) % (uint)_subchannels.Length);
        return PickResult.ForSubchannel(_subchannels[i]);
    }
}
