namespace Kosmos2.Engine;

/// <summary>
/// The engine's counters and gauges: written by the loop thread (and by <see cref="GenerationEngine.Submit"/> for
/// acceptances and refusals), read from any thread as one <see cref="EngineStats"/> snapshot.
/// </summary>
internal sealed class EngineCounters(TimeProvider time)
{
    // Written by the loop thread, read by any thread.
    private int _running;
    private int _slotsInUse;
    private long _stepsCompleted;
    private long _lastStepTicks;
    private int _lastStepTokens;
    private int _lastBatchSize;
    private long _lastProgressTimestamp = time.GetTimestamp();

    private int _cachedSlots;
    private long _cachedTokens;
    private long _prefixHits;
    private long _prefixMisses;
    private long _prefixEvictions;
    private long _prefixTokensSaved;

    // Counted with Interlocked (Submit runs on any thread).
    private long _accepted;
    private long _rejected;
    private long _rejectedQueueFull;
    private long _completed;
    private long _aborted;
    private long _failed;
    private long _generatedTokens;
    private long _runnerFailures;
    private long _sinkFaults;

    public void Accepted() => Interlocked.Increment(ref _accepted);

    public void Rejected(RejectionReason reason)
    {
        Interlocked.Increment(ref _rejected);
        if (reason == RejectionReason.QueueFull)
        {
            Interlocked.Increment(ref _rejectedQueueFull);
        }
    }

    public void Finished(FinishReason reason)
    {
        switch (reason)
        {
            case FinishReason.Aborted or FinishReason.Refused or FinishReason.QueueTimedOut:
                Interlocked.Increment(ref _aborted);
                break;
            case FinishReason.Error:
                Interlocked.Increment(ref _failed);
                break;
            default:
                Interlocked.Increment(ref _completed);
                break;
        }
    }

    public void TokenGenerated() => Interlocked.Increment(ref _generatedTokens);

    public void RunnerFailed() => Interlocked.Increment(ref _runnerFailures);

    public void SinkFaulted() => Interlocked.Increment(ref _sinkFaults);

    public void StepCompleted(TimeSpan duration, int tokens, int batchSize)
    {
        Volatile.Write(ref _lastStepTicks, duration.Ticks);
        Volatile.Write(ref _lastStepTokens, tokens);
        Volatile.Write(ref _lastBatchSize, batchSize);
        Interlocked.Increment(ref _stepsCompleted);
    }

    public void Gauges(int running, int slotsInUse)
    {
        Volatile.Write(ref _running, running);
        Volatile.Write(ref _slotsInUse, slotsInUse);
    }

    /// <summary>Adds the scheduler's prefix cache events and sets its occupancy (loop thread).</summary>
    public void Prefixes(PrefixEvents events, int cachedSlots, long cachedTokens)
    {
        Interlocked.Add(ref _prefixHits, events.Hits);
        Interlocked.Add(ref _prefixMisses, events.Misses);
        Interlocked.Add(ref _prefixEvictions, events.Evictions);
        Interlocked.Add(ref _prefixTokensSaved, events.TokensSaved);
        Volatile.Write(ref _cachedSlots, cachedSlots);
        Volatile.Write(ref _cachedTokens, cachedTokens);
    }

    /// <summary>The loop completed a step or confirmed it was idle (health tells an idle loop from a stuck one by this).</summary>
    public void Progress(long timestamp) => Volatile.Write(ref _lastProgressTimestamp, timestamp);

    public EngineStats Snapshot(int waiting, int slotsTotal)
    {
        var sinceProgress = time.GetElapsedTime(Volatile.Read(ref _lastProgressTimestamp), time.GetTimestamp());
        return new EngineStats(
            Running: Volatile.Read(ref _running),
            Waiting: waiting,
            SlotsInUse: Volatile.Read(ref _slotsInUse),
            SlotsTotal: slotsTotal,
            StepsCompleted: Interlocked.Read(ref _stepsCompleted),
            LastStepDuration: TimeSpan.FromTicks(Volatile.Read(ref _lastStepTicks)),
            LastStepTokens: Volatile.Read(ref _lastStepTokens),
            LastBatchSize: Volatile.Read(ref _lastBatchSize),
            LastProgressAt: time.GetUtcNow() - sinceProgress,
            SinceLastProgress: sinceProgress,
            Accepted: Interlocked.Read(ref _accepted),
            Rejected: Interlocked.Read(ref _rejected),
            RejectedQueueFull: Interlocked.Read(ref _rejectedQueueFull),
            Completed: Interlocked.Read(ref _completed),
            Aborted: Interlocked.Read(ref _aborted),
            Failed: Interlocked.Read(ref _failed),
            GeneratedTokens: Interlocked.Read(ref _generatedTokens),
            RunnerFailures: Interlocked.Read(ref _runnerFailures),
            SinkFaults: Interlocked.Read(ref _sinkFaults),
            Prefix: new PrefixCacheStats(
                Volatile.Read(ref _cachedSlots),
                Volatile.Read(ref _cachedTokens),
                Interlocked.Read(ref _prefixHits),
                Interlocked.Read(ref _prefixMisses),
                Interlocked.Read(ref _prefixEvictions),
                Interlocked.Read(ref _prefixTokensSaved)));
    }
}
