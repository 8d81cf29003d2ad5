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
public sealed record SamplingParameters(
    float Temperature = 0f,
    int TopK = 0,
    float TopP = 1f,
    float RepetitionPenalty = 1f,
    ulong Seed = 0)
{
    /// <summary>Argmax decoding, as HF's integration tests run Kosmos-2.</summary>
    public static SamplingParameters Greedy { get; } = new();

    /// <summary>True when the runner may take the argmax and skip the sampler.</summary>
    public bool IsGreedy => Temperature <= 0f;
}
