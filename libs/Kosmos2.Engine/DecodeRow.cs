namespace Kosmos2.Engine;

/// <summary>
/// One running sequence's decode step: feed <see cref="TokenId"/> at cache index <see cref="Position"/>
/// (HF position id Position+2, KOSMOS2_SPEC.md §4.2) in KV slot <see cref="Slot"/> and sample the next token.
/// </summary>
/// <param name="RequestId">The engine's id.</param>
/// <param name="Slot">The KV slot the request holds.</param>
/// <param name="TokenId">The last generated token, not yet in the cache.</param>
/// <param name="Position">Prompt length + generated tokens − 1: the cache already holds indices 0..Position-1.</param>
/// <param name="Request">The submitted data (sampling parameters, prompt for repetition penalty).</param>
/// <param name="GeneratedTokenIds">Tokens generated so far; valid only during <see cref="IModelRunner.Execute"/>.</param>
public readonly record struct DecodeRow(
    long RequestId,
    int Slot,
    int TokenId,
    int Position,
    GenerationRequest Request,
    IReadOnlyList<int> GeneratedTokenIds);
