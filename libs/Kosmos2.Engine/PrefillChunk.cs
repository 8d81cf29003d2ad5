namespace Kosmos2.Engine;

/// <summary>
/// Prompt tokens [<see cref="Start"/>, <see cref="End"/>) of one request for the runner to run into KV slot
/// <see cref="Slot"/> at cache indices Start..End-1 (HF position ids Start+2..End+1, KOSMOS2_SPEC.md §4.2).
/// Start = <see cref="ReusedTokens"/> (0 without the prefix cache) means the slot was just assigned to this request: the
/// runner resets its per-slot state; indices [0, ReusedTokens) already hold this prompt's keys and values (reused from a
/// cached or running sequence, copied by the step's <see cref="StepPlan.Copies"/> or left in the slot it took over).
/// </summary>
/// <param name="RequestId">The engine's id.</param>
/// <param name="Slot">The KV slot the request holds until it finishes.</param>
/// <param name="Request">The submitted data (prompt, image embeddings and offset, sampling).</param>
/// <param name="Start">First prompt index of the chunk.</param>
/// <param name="End">One past the last prompt index of the chunk.</param>
/// <param name="IsLast">True when the chunk ends the prompt: the runner samples the first new token from its last position.</param>
public readonly record struct PrefillChunk(long RequestId, int Slot, GenerationRequest Request, int Start, int End, bool IsLast)
{
    /// <summary>Prompt tokens whose KV rows the request found in the prefix cache; its first chunk starts there.</summary>
    public int ReusedTokens { get; init; }

    /// <summary>True for the request's first chunk: the slot is new to it (reset its per-slot state, keep rows [0, Start)).</summary>
    public bool IsFirst => Start == ReusedTokens;

    /// <summary>Tokens in the chunk.</summary>
    public int Length => End - Start;

    /// <summary>The chunk's prompt token ids.</summary>
    public ReadOnlySpan<int> TokenIds => Request.PromptTokenIds.Span[Start..End];
}
