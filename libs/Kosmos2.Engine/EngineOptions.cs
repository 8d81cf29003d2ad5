namespace Kosmos2.Engine;

/// <summary>Limits of one <see cref="GenerationEngine"/>; fixed for its lifetime.</summary>
public sealed record EngineOptions
{
    /// <summary>Most sequences in the running batch = KV slots the runner allocates.</summary>
    public int MaxRunning { get; init; } = 16;

    /// <summary>Most accepted requests not yet admitted; a submit beyond it is refused at once (RESOURCE_EXHAUSTED).</summary>
    public int MaxWaiting { get; init; } = 64;

    /// <summary>Tokens one KV slot holds: prompt + max new tokens of a request must fit, or it is refused.</summary>
    public int MaxSequenceTokens { get; init; } = 1024;

    /// <summary>
    /// Tokens one step may process: one per decode row, the rest for prefill chunks.
    /// 256 = 16 decode rows + three Kosmos-2 prompts (≥ 67 tokens each), so a long prompt costs the
    /// running streams at most one 256-token forward of delay per step instead of one whole prompt.
    /// (The decoder worker sets 128 from its measurements: see its options.)
    /// Must be ≥ <see cref="MaxRunning"/> so a prefilling sequence always gets at least one token.
    /// </summary>
    public int MaxTokensPerStep { get; init; } = 256;

    /// <summary>
    /// Most finished sequences whose KV slots stay reclaimable as a prefix cache (0 = off: a finished sequence's slot is
    /// free at once, as before). A new request whose prompt starts with a cached sequence's tokens over the same image
    /// (<see cref="IImagePayload.Identity"/>) reuses its rows and prefills only the rest; so does one that shares a prefix
    /// with a running sequence (phrase grounding's parallel prompts). Cached slots cost no memory (the pool is
    /// preallocated) and never refuse an admission: the least recently used one is reclaimed when no slot is free.
    /// At most <see cref="MaxRunning"/> take effect.
    /// </summary>
    public int PrefixCacheSlots { get; init; }

    /// <summary><c>&lt;/s&gt;</c>: the loaded checkpoint's <c>eos_token_id</c> (KOSMOS2_SPEC.md §5), never assumed.</summary>
    public required int EosTokenId { get; init; }

    /// <summary>
    /// Longest idle wait of <see cref="GenerationEngine.RunLoop"/> before it refreshes its progress timestamp.
    /// One wake-up a second costs nothing and lets health tell an idle loop from a stuck one.
    /// </summary>
    public TimeSpan IdleHeartbeat { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Longest a request may wait in the queue for a slot; past it, it ends <see cref="FinishReason.QueueTimedOut"/>
    /// (nothing generated) at the next step, and so does one that the engine forecasts would wait past it
    /// (<see cref="QueueForecast"/>: measured step time and answer lengths), without waiting it out. Zero: no bound (a
    /// queued request waits for a running one to end, which may be a whole generation). A bound turns overload into
    /// prompt refusals instead of long first-token times.
    /// </summary>
    public TimeSpan MaxQueueWait { get; init; }

    /// <summary>Throws when a limit is out of range, naming the setting to fix.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRunning, 1, nameof(MaxRunning));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxWaiting, nameof(MaxWaiting));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSequenceTokens, 2, nameof(MaxSequenceTokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxTokensPerStep, MaxRunning, nameof(MaxTokensPerStep));
        ArgumentOutOfRangeException.ThrowIfNegative(EosTokenId, nameof(EosTokenId));
        ArgumentOutOfRangeException.ThrowIfNegative(PrefixCacheSlots, nameof(PrefixCacheSlots));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(IdleHeartbeat, TimeSpan.Zero, nameof(IdleHeartbeat));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueueWait, TimeSpan.Zero, nameof(MaxQueueWait));
    }
}
