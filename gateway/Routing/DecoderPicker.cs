using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// Least-outstanding-streams picker for decoders (after grpc-dotnet's LeastUsedBalancer test balancer): generation
/// streams last from under a second to a minute, so round robin piles long ones onto one worker while another idles.
/// <para>
/// Rule, per call: candidates are the ready decoders minus those that already refused this request (all ready ones if
/// that leaves none). Let <c>min</c> be the fewest in-flight streams among them. The session's previous decoder
/// (<see cref="DecoderRouting.PreferredAddress"/>) is taken when it is a candidate and has at most
/// <c>min + slack</c> streams (<c>Gateway:DecoderAffinitySlack</c>, default 2): staying costs at most a couple of
/// streams of extra batch load and keeps a session on a worker that may still hold its prefix warm. Otherwise the
/// least busy candidate is taken; ties rotate so equal load spreads.
/// </para>
/// </summary>
internal sealed class DecoderPicker : SubchannelPicker
{
    private readonly Subchannel[] _subchannels;
    private readonly InFlightCounter[] _counters;
    private readonly string?[] _addresses;
    private readonly int _affinitySlack;
    private int _rotation;

    public DecoderPicker(IReadOnlyList<Subchannel> readySubchannels, int affinitySlack)
    {
        _subchannels = [.. readySubchannels];
        _counters = [.. readySubchannels.Select(InFlightCounter.For)];
        _addresses = [.. readySubchannels.Select(WorkerAddress.Of)];
        _affinitySlack = affinitySlack;
    }

    public override PickResult Pick(PickContext context)
    {
        var routing = DecoderRouting.Current;
        var excluded = routing?.ExcludedAddresses;
        var useExclusion = excluded is { Count: > 0 } && _addresses.Any(a => a is null || !excluded.Contains(a));

        var min = int.MaxValue;
        for (var i = 0; i < _subchannels.Length; i++)
        {
            if (IsCandidate(i))
            {
                min = Math.Min(min, _counters[i].Value);
            }
        }

        var chosen = -1;
        if (routing?.PreferredAddress is { } preferred)
        {
            var p = Array.IndexOf(_addresses, preferred);
            if (p >= 0 && IsCandidate(p) && _counters[p].Value <= min + _affinitySlack)
            {
                chosen = p;
            }
        }
        if (chosen < 0)
        {
            var start = (int)((uint)Interlocked.Increment(ref _rotation) % (uint)_subchannels.Length);
            for (var k = 0; k < _subchannels.Length && chosen < 0; k++)
            {
                var i = (start + k) % _subchannels.Length;
                if (IsCandidate(i) && _counters[i].Value == min)
                {
                    chosen = i;
                }
            }
            if (chosen < 0)
            {
                chosen = start; // counts moved under us; any ready decoder will do
            }
        }
        return PickResult.ForSubchannel(_subchannels[chosen], new Tracker(_counters[chosen], _addresses[chosen], routing));

        bool IsCandidate(int i) => !useExclusion || _addresses[i] is not { } a || !excluded!.Contains(a);
    }

    public override string ToString() => string.Join(", ", _addresses.Select((a, i) => $"{a}={_counters[i].Value}"));

    /// <summary>
    /// Counts the call on its decoder from send. With a <see cref="DecoderRouting"/> the count is released by the
    /// stream's owner when the stream ends (grpc-dotnet completes the tracker at response headers, too early for a
    /// stream); without one (a plain call on the channel), or when sending failed, it is released here.
    /// </summary>
    private sealed class Tracker(InFlightCounter counter, string? address, DecoderRouting? routing) : ISubchannelCallTracker
    {
        private InFlightLease? _lease;

        public void Start()
        {
            _lease = new InFlightLease(counter);
            routing?.Attach(address, _lease);
        }

        public void Complete(CompletionContext context)
        {
            if (routing is null || context.Error is not null)
            {
                _lease?.Release();
            }
        }
    }
}
