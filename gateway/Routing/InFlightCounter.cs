using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// Calls in flight on one subchannel, kept in its attributes so it survives picker rebuilds.
/// For a decoder stream "in flight" lasts until the stream is finished or disposed (see <see cref="DecoderRouting"/>),
/// not until response headers arrive, which is all grpc-dotnet's own call tracker sees.
/// </summary>
public sealed class InFlightCounter
{
    private static readonly BalancerAttributesKey<InFlightCounter> Key = new("kosmos2.in_flight");

    private int _value;

    public int Value => Volatile.Read(ref _value);

    internal void Increment() => Interlocked.Increment(ref _value);

    internal void Decrement() => Interlocked.Decrement(ref _value);

    /// <summary>The subchannel's counter, created on first use.</summary>
    internal static InFlightCounter For(Subchannel subchannel)
    {
        lock (subchannel.Attributes)
        {
            if (!subchannel.Attributes.TryGetValue(Key, out var counter))
            {
                counter = new InFlightCounter();
                subchannel.Attributes.Set(Key, counter);
            }
            return counter;
        }
    }
}
