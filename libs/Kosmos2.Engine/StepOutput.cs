namespace Kosmos2.Engine;

/// <summary>The runner's answer to one <see cref="StepPlan"/>: sampled token ids, index-aligned with the plan.</summary>
/// <param name="PrefillTokenIds">One per plan prefill chunk: the sampled id for a last chunk, ignored (use −1) otherwise.</param>
/// <param name="DecodeTokenIds">One per plan decode row: the sampled id.</param>
/// <param name="PrefillLogprobs">Aligned with <paramref name="PrefillTokenIds"/>: log-probabilities for requests that asked (null entries otherwise); null = none this step.</param>
/// <param name="DecodeLogprobs">Aligned with <paramref name="DecodeTokenIds"/>, the same way.</param>
public sealed record StepOutput(
    IReadOnlyList<int> PrefillTokenIds,
    IReadOnlyList<int> DecodeTokenIds,
    IReadOnlyList<TokenLogprobs?>? PrefillLogprobs = null,
    IReadOnlyList<TokenLogprobs?>? DecodeLogprobs = null);
