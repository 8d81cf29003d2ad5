using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

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
    IReadOnlyList<TokenLogprobs?>? DecodeLogprobs = null)
{
    /// <summary>Throws when this output does not answer <paramref name="plan"/> (a runner bug, failed like a runner error).</summary>
    internal void EnsureMatches(StepPlan plan)
    {
        if (PrefillTokenIds.Count != plan.Prefills.Count || DecodeTokenIds.Count != plan.Decodes.Count
            || (PrefillLogprobs?.Count ?? plan.Prefills.Count) != plan.Prefills.Count
            || (DecodeLogprobs?.Count ?? plan.Decodes.Count) != plan.Decodes.Count)
        {
            ThrowBadOutput(
                $"expected {plan.Prefills.Count} prefill and {plan.Decodes.Count} decode ids, got " +
                $"{PrefillTokenIds.Count} and {DecodeTokenIds.Count}");
        }
        for (var i = 0; i < plan.Prefills.Count; i++)
        {
            if (plan.Prefills[i].IsLast && PrefillTokenIds[i] < 0)
            {
                ThrowBadOutput($"no token sampled for the last prefill chunk of request {plan.Prefills[i].RequestId}");
            }
        }
        for (var i = 0; i < plan.Decodes.Count; i++)
        {
            if (DecodeTokenIds[i] < 0)
            {
                ThrowBadOutput($"no token sampled for the decode row of request {plan.Decodes[i].RequestId}");
            }
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadOutput(string what) =>
        throw new InvalidOperationException($"The model runner's StepOutput does not match its StepPlan: {what}.");
}

