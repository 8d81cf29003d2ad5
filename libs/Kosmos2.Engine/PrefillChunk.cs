namespace Kosmos2.Engine;

/// <summary>
/// Prompt tokens [<see cref="Start"/>, <see cref="End"/>) of one request for the runner to run into KV slot
/// <see cref="Slot"/> at cache indices Start..End-1 (HF position ids Start+2..End+1, KOSMOS2_SPEC.md §4.2).
/// Start = 0 means the slot was just assigned to this request: the runner resets its per-slot state.
/// </summary>
/// <param name="RequestId">The engine's id.</param>
/// <param name="Slot">The KV slot the request holds until it finishes.</param>
/// <param name="Request">The submitted data (prompt, image embeddings and offset, sampling).</param>
/// <param name="Start">First prompt index of the chunk.</param>
/// <param name="End">One past the last prompt index of the chunk.</param>
/// <param name="IsLast">True when the chunk ends the prompt: the runner samples the first new token from its last position.</param>
public readonly record struct PrefillChunk(long RequestId, int Slot, GenerationRequest Request, int Start, int End, bool IsLast)
{
    /// <summary>Tokens in the chunk.</summary>
    public int Length => End - Start;

    /// <summary>The chunk's prompt token ids.</summary>
    public ReadOnlySpan<int> TokenIds => Request.PromptTokenIds.Span[Start..End];
}
