namespace Kosmos2.Engine;

/// <summary>The runner's answer to one <see cref="StepPlan"/>: sampled token ids, index-aligned with the plan.</summary>
/// <param name="PrefillTokenIds">One per plan prefill chunk: the sampled id for a last chunk, ignored (use −1) otherwise.</param>
/// <param name="DecodeTokenIds">One per plan decode row: the sampled id.</param>
public sealed record StepOutput(IReadOnlyList<int> PrefillTokenIds, IReadOnlyList<int> DecodeTokenIds);
