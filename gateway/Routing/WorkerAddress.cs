using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>The <c>host:port</c> form of a worker address used for affinity and logs.</summary>
internal static class WorkerAddress
{
    public static string? Of(Subchannel subchannel) =>
        subchannel.CurrentAddress is { } address ? Of(address) : null;

    public static string Of(BalancerAddress address) => $"{address.EndPoint.Host}:{address.EndPoint.Port}";
}
