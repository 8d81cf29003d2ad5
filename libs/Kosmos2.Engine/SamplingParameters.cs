namespace Kosmos2.Engine;

/// <summary>
/// How the runner picks a token from a row's logits. The engine only carries these: sampling needs the
/// logits, which live with the runner. All defaults = greedy (argmax, ties → lowest id).
/// </summary>
/// <param name="Temperature">0 = greedy.</param>
/// <param name="TopK">0 disables.</param>
/// <param name="TopP">0 or 1 disables.</param>
/// <param name="RepetitionPenalty">0 or 1 disables; HF applies it over prompt + generated ids.</param>
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

    /// <summary>True when the runner may take the argmax and skip the sampler.</summary>
    public bool IsGreedy => Temperature <= 0f;
}
