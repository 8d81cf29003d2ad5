namespace Kosmos2.Engine;

/// <summary>
/// Everything the runner computes in one step. A request appears at most once per plan; decode rows are in
/// admission order, prefill chunks in first-come order. The sum of chunk lengths plus decode rows is at most
/// <see cref="EngineOptions.MaxTokensPerStep"/>.
/// </summary>
/// <param name="StepIndex">0 for the first step, then +1 per executed plan.</param>
/// <param name="Prefills">Prompt chunks to run.</param>
/// <param name="Decodes">One-token rows to run.</param>
public sealed record StepPlan(long StepIndex, IReadOnlyList<PrefillChunk> Prefills, IReadOnlyList<DecodeRow> Decodes)
{
    /// <summary>
    /// KV rows to copy between slots before the forward, in this order (a later copy may read a slot an earlier one
    /// filled). Copies read rows as they were at the end of the previous step, so they run before anything of this step
    /// is written. Empty unless the prefix cache is on.
    /// </summary>
    public IReadOnlyList<KvCopy> Copies { get; init; } = [];

    /// <summary>Tokens this step processes.</summary>
    public int TokenCount
    {
        get
        {
            var tokens = Decodes.Count;
            foreach (var chunk in Prefills)
            {
                tokens += chunk.Length;
            }
            return tokens;
        }
    }
}
