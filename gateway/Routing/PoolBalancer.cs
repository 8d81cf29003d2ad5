using Grpc.Core;
using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// A subchannel-per-address balancer whose picker policy is given, and which records how many workers the resolver
/// returned and how many are ready (<see cref="WorkerPoolState"/>).
/// </summary>
internal sealed class PoolBalancer(
    IChannelControlHelper controller, ILoggerFactory loggerFactory, WorkerPoolState state,
    Func<IReadOnlyList<Subchannel>, SubchannelPicker> createPicker)
    : SubchannelsLoadBalancer(new ReadyCountingController(controller, state), loggerFactory)
{
    public override void UpdateChannelState(ChannelState channelState)
    {
        state.SetKnown(channelState.Status.StatusCode == StatusCode.OK ? channelState.Addresses?.Count ?? 0 : 0);
        base.UpdateChannelState(channelState);
    }

    protected override SubchannelPicker CreatePicker(IReadOnlyList<Subchannel> readySubchannels)
    {
        state.SetReady(readySubchannels.Count);
        return createPicker(readySubchannels);
    }

    /// <summary>Sees the balancer leave READY (no picker of ours is created then) and zeroes the ready count.</summary>
    private sealed class ReadyCountingController(IChannelControlHelper inner, WorkerPoolState state) : IChannelControlHelper
    {
        public Subchannel CreateSubchannel(SubchannelOptions options) => inner.CreateSubchannel(options);

        public void UpdateState(BalancerState balancerState)
        {
            if (balancerState.ConnectivityState != ConnectivityState.Ready)
            {
                state.SetReady(0);
            }
            inner.UpdateState(balancerState);
        }

        public void RefreshResolver() => inner.RefreshResolver();
    }
}
