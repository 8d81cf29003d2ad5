using Kosmos2.Model;

namespace Kosmos2.DecoderWorker;

/// <summary>Decoder worker settings, bound from the <c>Decoder</c> section (environment: <c>Decoder__ModelDir</c>, …).</summary>
/// <remarks>
/// <see cref="ModelSourceOptions.Threads"/>: with native kernels (see <see cref="ModelSourceOptions.Kernels"/>) these are the kernels' threads
/// and libtorch keeps one. Lower it when other processes share the cores: a 2-thread bf16 product stalls at multiples of
/// ~8 ms when a core is taken away (measured).
/// </remarks>
public sealed class DecoderWorkerOptions : ModelSourceOptions
{
    public const string SectionName = "Decoder";

    /// <summary>Most sequences decoded together (= KV slots, preallocated at warm-up).</summary>
    public int MaxRunning { get; set; } = 16;

    /// <summary>Most requests waiting for admission; more are refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxWaiting { get; set; } = 64;

    /// <summary>
    /// Longest a request may wait for a slot, in milliseconds; past it, it is refused RESOURCE_EXHAUSTED with a retry
    /// hint (nothing generated, so the gateway may offer it to another decoder). 0 = no bound: a queued request waits for
    /// a running generation to end, which is a whole generation's time. Set it from your time-to-first-token objective.
    /// </summary>
    public int MaxQueueWaitMs { get; set; }

    /// <summary>Longest context (prompt + new tokens) of one sequence = KV slot length.</summary>
    public int MaxSequenceTokens { get; set; } = 1024;

    /// <summary>
    /// Tokens per engine step (decode rows first, then prefill chunks; one forward). Bounds how long a new prompt
    /// stalls running streams. Measured (benchmarks/Kosmos2.ServingBenchmarks `stall`, full size bf16, 4 streams + a
    /// 700-token prompt): budget 1024 → one 4.5–5.6 s gap for every running stream; budget 64 → worst gap 0.67 s (2.1×
    /// baseline), the long prompt's first token 1.07× later. 128 keeps a typical 71-token Kosmos-2 prompt in one step.
    /// </summary>
    public int MaxTokensPerStep { get; set; } = 128;

    /// <summary>
    /// Most finished sequences whose KV slots stay reclaimable as a prefix cache (0 = off, as before the cache existed;
    /// at most <see cref="MaxRunning"/> count). A chat turn continues its previous turn's rows and prefills only its
    /// question; phrase grounding's prompts share one image prefix. The pool is preallocated, so it costs no memory,
    /// and a cached slot is reclaimed (least recently used first) whenever a request needs one.
    /// </summary>
    public int PrefixCacheSlots { get; set; } = 16;

    /// <summary>Health turns NOT_SERVING when work is pending and the engine loop has not advanced for this long.</summary>
    public int StallTimeoutSeconds { get; set; } = 60;
}
