namespace Kosmos2.Engine;

/// <summary>
/// How the runner picks a token from a row's logits. The engine only carries these: sampling needs the
/// logits, which live with the runner. All defaults = greedy (argmax, ties → lowest id); each knob's default is
/// its "off", the one convention from here to the sampler (the transport maps its "unset" 0s to these).
/// </summary>
/// <param name="Temperature">0 = greedy.</param>
/// <param name="TopK">0 = off.</param>
/// <param name="TopP">1 = off; in (0, 1].</param>
/// <param name="RepetitionPenalty">1 = off; &gt; 0. HF applies it over prompt + generated ids.</param>
/// <param name="Seed">Seed of the request's own generator, so a sampled request is reproducible in any batch.</param>
/// <param name="ConstrainGrounding">Mask tokens that would break the Kosmos-2 grounding grammar before picking.</param>
/// <param name="ReturnLogprobs">Report each picked token's log-probability (<see cref="TokenLogprobs"/>).</param>
/// <param name="TopLogprobs">With <paramref name="ReturnLogprobs"/>: how many best alternatives to report (0…<see cref="MaxTopLogprobs"/>).</param>
public sealed record SamplingParameters(
    float Temperature = 0f,
    int TopK = 0,
    float TopP = 1f,
    float RepetitionPenalty = 1f,
    ulong Seed = 0,
    bool ConstrainGrounding = false,
    bool ReturnLogprobs = false,
    int TopLogprobs = 0)
{
    /// <summary>Most alternatives a request may ask for per token (each costs a pass over the vocabulary row).</summary>
    public const int MaxTopLogprobs = 5;

    /// <summary>Argmax decoding, as HF's integration tests run Kosmos-2.</summary>
    public static SamplingParameters Greedy { get; } = new();

    /// <summary>True when the runner takes the argmax (no draw, no generator).</summary>
    public bool IsGreedy => Temperature <= 0f;

    public bool HasRepetitionPenalty => RepetitionPenalty != 1f;

    /// <summary>Why these settings cannot run, or null (checked once, by the engine at submit).</summary>
    public string? Problem() =>
        !float.IsFinite(Temperature) || Temperature < 0 ? $"temperature must be a finite number ≥ 0 (got {Temperature})."
        : TopK < 0 ? $"top_k must be ≥ 0 (got {TopK})."
        : !(TopP > 0 && TopP <= 1) ? $"top_p must be in (0, 1] (got {TopP})."
        : !float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0 ? $"repetition_penalty must be a finite number > 0 (got {RepetitionPenalty})."
        : TopLogprobs is < 0 or > MaxTopLogprobs ? $"top_logprobs is {TopLogprobs}; at most {MaxTopLogprobs} alternatives per token."
        : TopLogprobs > 0 && !ReturnLogprobs ? "top_logprobs needs return_logprobs = true."
        : null;
}
