using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>Creates a <see cref="PoolBalancer"/> under a policy name the channel's service config selects.</summary>
internal sealed class PoolBalancerFactory(string name, WorkerPoolState state, Func<IReadOnlyList<Subchannel>, SubchannelPicker> createPicker)
    : LoadBalancerFactory
{
    public const string LeastOutstanding = "kosmos2_least_outstanding";
    public const string RoundRobin = "kosmos2_round_robin";

    public override string Name { get; } = name;

    public override LoadBalancer Create(LoadBalancerOptions options) =>
        new PoolBalancer(options.Controller, options.LoggerFactory, state, createPicker);
}
