using System.Diagnostics.Metrics;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.VisionWorker.Encoding;

/// <summary>
/// Bounds decode + preprocess, the step that allocates per-image pixel buffers (up to
/// <see cref="Processing.Images.ImageLimits.DecodeBytesBound"/> each): at most <c>maxConcurrent</c> run at once, at
/// most <c>maxWaiting</c> more wait for a slot, and anything beyond is refused with RESOURCE_EXHAUSTED at once,
/// as the encoder queue refuses when full. Peak decode memory is then maxConcurrent × that bound, whatever arrives.
/// </summary>
public sealed class DecodeGate : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly int _maxConcurrent;
    private readonly int _maxWaiting;
    private readonly Counter<long> _refused;
    private int _waiting;

    public DecodeGate(int maxConcurrent, int maxWaiting, Meter meter)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxConcurrent);
        ArgumentOutOfRangeException.ThrowIfNegative(maxWaiting);
        _maxConcurrent = maxConcurrent;
        _maxWaiting = maxWaiting;
        _slots = new SemaphoreSlim(maxConcurrent, maxConcurrent);
        meter.CreateObservableGauge("kosmos2.vision.decodes_running", () => Running, description: "Images being decoded and preprocessed.");
        meter.CreateObservableGauge("kosmos2.vision.decodes_waiting", () => Waiting, description: "Requests waiting for a decode slot.");
        _refused = meter.CreateCounter<long>("kosmos2.vision.decodes_refused", description: "Requests refused because every decode slot and waiting place was taken.");
    }

    /// <summary>Decodes running now.</summary>
    public int Running => _maxConcurrent - _slots.CurrentCount;

    /// <summary>Requests waiting for a slot now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// Takes a slot (dispose the result to give it back), waiting if all are busy and fewer than maxWaiting already
    /// wait; otherwise throws RESOURCE_EXHAUSTED. Cancellation while waiting throws and takes no slot.
    /// </summary>
    public async ValueTask<Slot> EnterAsync(CancellationToken cancellationToken)
    {
        if (_slots.Wait(0, CancellationToken.None))
        {
            return new Slot(_slots);
        }
        if (Interlocked.Increment(ref _waiting) > _maxWaiting)
        {
            Interlocked.Decrement(ref _waiting);
            _refused.Add(1);
            throw RpcErrors.ResourceExhaustedException(
                $"The image decoder is busy ({_maxConcurrent} decoding, {_maxWaiting} waiting; Vision:MaxConcurrentDecodes, Vision:MaxWaitingDecodes): retry later or on another worker.");
        }
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        return new Slot(_slots);
    }

    public void Dispose() => _slots.Dispose();

    /// <summary>One decode slot; disposing it frees the slot (once).</summary>
    public sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private SemaphoreSlim? _slots = slots;

        public void Dispose() => Interlocked.Exchange(ref _slots, null)?.Release();
    }
}
