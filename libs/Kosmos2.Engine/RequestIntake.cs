namespace Kosmos2.Engine;

/// <summary>
/// Where other threads hand submits and aborts to the loop, which drains them as one batch between steps.
/// A lock (not a lock-free queue) makes "closed?" and "enqueue" one atomic act, so no request is accepted after
/// the loop's final drain; submits arrive at most a few hundred a second, far below any contention.
/// </summary>
internal sealed class RequestIntake : IDisposable
{
    private readonly Lock _lock = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private List<Item> _pending = [];
    private List<Item> _draining = [];
    private bool _closed;
    private volatile bool _admitting = true;
    private long _nextId = 1;
    private int _waiting;

    /// <summary>One submit (<see cref="Item.Submitted"/> set) or one abort (<see cref="Item.AbortId"/>).</summary>
    public readonly record struct Item(Sequence? Submitted, long AbortId);

    /// <summary>False once <see cref="StopAdmitting"/> was called: new submits are refused, aborts still pass.</summary>
    public bool IsAdmitting => _admitting;

    /// <summary>Accepted requests not yet admitted (in the intake or the waiting queue).</summary>
    public int WaitingCount => Volatile.Read(ref _waiting);

    public bool IsEmpty
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count == 0;
            }
        }
    }

    /// <summary>Queues a request unless the engine is closed or <paramref name="maxWaiting"/> requests already wait.</summary>
    public RejectionReason? TryAdd(Func<long, Sequence> create, int maxWaiting, out Sequence? sequence)
    {
        sequence = null;
        lock (_lock)
        {
            if (_closed || !_admitting)
            {
                return RejectionReason.ShuttingDown;
            }
            if (_waiting >= maxWaiting)
            {
                return RejectionReason.QueueFull;
            }
            sequence = create(_nextId++);
            Interlocked.Increment(ref _waiting);
            _pending.Add(new Item(sequence, 0));
        }
        _wake.Set();
        return null;
    }

    public void Abort(long requestId)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _pending.Add(new Item(null, requestId));
        }
        _wake.Set();
    }

    /// <summary><paramref name="count"/> requests left the waiting state (admitted, aborted or shut down).</summary>
    public void LeftWaiting(int count = 1) => Interlocked.Add(ref _waiting, -count);

    /// <summary>Everything queued since the last drain, in arrival order; valid until the next call.</summary>
    public List<Item> Drain()
    {
        _draining.Clear();
        lock (_lock)
        {
            (_pending, _draining) = (_draining, _pending);
        }
        return _draining;
    }

    /// <summary>Blocks until something is queued, <paramref name="timeout"/> passes or the token is cancelled.</summary>
    public void WaitForWork(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Reset before looking, so a submit between the look and the wait still wakes us.
        _wake.Reset();
        if (!IsEmpty)
        {
            return;
        }
        try
        {
            _wake.Wait(timeout, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The caller checks its token.
        }
    }

    /// <summary>Refuses every later submit (aborts still pass, so running requests can be cancelled) and wakes the loop.</summary>
    public void StopAdmitting()
    {
        lock (_lock)
        {
            _admitting = false;
        }
        _wake.Set();
    }

    /// <summary>Refuses every later submit and abort; the loop then drains once more and ends what is left.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
        }
        _wake.Set();
    }

    public void Dispose() => _wake.Dispose();
}
