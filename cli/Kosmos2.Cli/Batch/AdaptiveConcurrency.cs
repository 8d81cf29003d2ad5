namespace Kosmos2.Cli.Batch;

/// <summary>
/// How many requests a batch keeps in flight: starts at what the cluster can hold, halves (from what was in flight)
/// when a server refuses with RESOURCE_EXHAUSTED, and grows back by one after a full window of successes, TCP-style,
/// never above <see cref="Max"/>. The gateway queues what its decoders cannot take yet, so the start is generous.
/// </summary>
internal sealed class AdaptiveConcurrency(int initial, int max)
{
    private readonly object _lock = new();
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private int _limit = Math.Clamp(initial, 1, Math.Max(1, max));
    private int _inFlight;
    private int _successes;

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
            _limit = Math.Max(1, Math.Min(_limit, _inFlight) / 2);
            _successes = 0;
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
