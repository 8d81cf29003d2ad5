namespace Kosmos2.Cli.Batch;

/// <summary>
/// How many requests a batch keeps in flight: starts at what the cluster can hold, halves (from what was in flight)
/// when a server refuses with RESOURCE_EXHAUSTED, and grows back by one after a full window of successes, TCP-style,
/// never above <see cref="Max"/>. The gateway queues what its decoders cannot take yet, so the start is generous.
/// One overload halves once: the refusals of requests already in flight when the limit fell are answers to the same
/// overload (TCP halves once per window too). Halving on each of them took a 64-image run (full size, 2026-12-02) from
/// 32 in flight to 1 within seconds, and it then spent most of the run at 1–8 in flight on a 16-slot decoder.
/// </summary>
internal sealed class AdaptiveConcurrency(int initial, int max)
{
    private readonly object _lock = new();
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private int _limit = Math.Clamp(initial, 1, Math.Max(1, max));
    private int _inFlight;
    private int _successes;
    private int _inFlightAtDecrease; // other requests in flight when the limit last fell
    private int _answeredSinceDecrease;

    public int Max { get; } = Math.Max(1, max);

    /// <summary>The current limit (for the progress line).</summary>
    public int Limit
    {
        get
        {
            lock (_lock)
            {
                return _limit;
            }
        }
    }

    /// <summary>Waits for a free place; the caller must <see cref="Release"/> it.</summary>
    public Task WaitAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource waiter;
        lock (_lock)
        {
            if (_inFlight < _limit)
            {
                _inFlight++;
                return Task.CompletedTask;
            }
            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter);
        }
        // A cancelled waiter stays queued; GrantLocked skips it.
        cancellationToken.Register(() => waiter.TrySetCanceled(cancellationToken));
        return waiter.Task;
    }

    public void Release()
    {
        lock (_lock)
        {
            _inFlight--;
            GrantLocked();
        }
    }

    public void OnSuccess()
    {
        lock (_lock)
        {
            _answeredSinceDecrease++;
            if (++_successes >= _limit && _limit < Max)
            {
                _limit++;
                _successes = 0;
                GrantLocked();
            }
        }
    }

    /// <summary>A server said it is full: fewer in flight from now on.</summary>
    public void OnRefused()
    {
        lock (_lock)
        {
            _successes = 0;
            if (_answeredSinceDecrease++ < _inFlightAtDecrease)
            {
                return; // sent before the limit fell: the same overload
            }
            _limit = Math.Max(1, Math.Min(_limit, _inFlight) / 2);
            _inFlightAtDecrease = _inFlight - 1; // the others still out (this one's place is released by the caller)
            _answeredSinceDecrease = 0;
        }
    }

    private void GrantLocked()
    {
        while (_inFlight < _limit && _waiters.TryDequeue(out var waiter))
        {
            if (waiter.TrySetResult())
            {
                _inFlight++;
            }
        }
    }
}
