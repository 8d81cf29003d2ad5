namespace Kosmos2.Engine;

/// <summary>A snapshot of the engine's load and counters for metrics, <c>GetInfo</c> and health; safe from any thread.</summary>
/// <param name="Running">Sequences holding a slot (prefilling or decoding).</param>
/// <param name="Waiting">Accepted requests not yet admitted.</param>
/// <param name="SlotsInUse">KV slots taken.</param>
/// <param name="SlotsTotal">KV slots in all (= MaxRunning).</param>
/// <param name="StepsCompleted">Steps whose runner call succeeded.</param>
/// <param name="LastStepDuration">Wall time of the last completed step, runner included.</param>
/// <param name="LastStepTokens">Tokens the last completed step processed.</param>
/// <param name="LastBatchSize">Prefill chunks + decode rows of the last completed step.</param>
/// <param name="LastProgressAt">When the loop last completed a step or confirmed it was idle.</param>
/// <param name="SinceLastProgress">Time since then; health reports NOT_SERVING when it grows past a limit.</param>
/// <param name="Accepted">Requests accepted since start.</param>
/// <param name="Rejected">Requests refused at submit since start, any reason.</param>
/// <param name="RejectedQueueFull">Of those, refused because the waiting queue was full.</param>
/// <param name="Completed">Requests ended by eos, length or stop sequence.</param>
/// <param name="Aborted">Requests ended by abort or shutdown, or refused by a drain before admission (<see cref="FinishReason.Refused"/>).</param>
/// <param name="Failed">Requests ended by a runner failure.</param>
/// <param name="GeneratedTokens">Tokens generated since start.</param>
/// <param name="RunnerFailures">Runner calls that threw.</param>
/// <param name="SinkFaults">Sink callbacks that threw.</param>
/// <param name="Prefix">The prefix cache's occupancy and counters (all zero when it is off).</param>
public readonly record struct EngineStats(
    int Running,
    int Waiting,
    int SlotsInUse,
    int SlotsTotal,
    long StepsCompleted,
    TimeSpan LastStepDuration,
    int LastStepTokens,
    int LastBatchSize,
    DateTimeOffset LastProgressAt,
    TimeSpan SinceLastProgress,
    long Accepted,
    long Rejected,
    long RejectedQueueFull,
    long Completed,
    long Aborted,
    long Failed,
    long GeneratedTokens,
    long RunnerFailures,
    long SinkFaults,
    PrefixCacheStats Prefix = default);

/// <summary>The prefix cache (<see cref="EngineOptions.PrefixCacheSlots"/>) now and since start.</summary>
/// <param name="CachedSlots">Idle KV slots holding a finished sequence's rows, reclaimable.</param>
/// <param name="CachedTokens">Tokens those slots hold.</param>
/// <param name="Hits">Admissions that reused at least one token of a cached or running sequence's rows.</param>
/// <param name="Misses">Admissions that prefilled their whole prompt while the cache was on.</param>
/// <param name="Evictions">Cached sequences dropped for room (budget or a slot for a new request).</param>
/// <param name="TokensSaved">Prompt tokens reused instead of prefilled.</param>
public readonly record struct PrefixCacheStats(int CachedSlots, long CachedTokens, long Hits, long Misses, long Evictions, long TokensSaved);
