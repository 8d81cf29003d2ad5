namespace Kosmos2.Engine;

/// <summary>
/// What a caller submits: plain data, no tensors. The engine never copies or mutates it, and hands it to the
/// runner with every chunk and row, so the caller must not change the arrays after submitting.
/// </summary>
/// <param name="PromptTokenIds">The whole prompt, including the 64 image placeholders.</param>
/// <param name="Stopping">When to stop.</param>
/// <param name="Sampling">How to pick tokens; null = greedy.</param>
/// <param name="ImageEmbeddings">
/// Opaque to the engine (e.g. the request's <c>TensorBytes</c>); the runner uploads it when it prefills the chunk
/// that covers the image positions. Null for a prompt without an image.
/// </param>
/// <param name="ImageOffset">Index in <paramref name="PromptTokenIds"/> of the first image position (2 for Kosmos-2).</param>
/// <param name="CallerId">The caller's id, for logs and traces only; the engine keys requests by its own id.</param>
public sealed record GenerationRequest(
    ReadOnlyMemory<int> PromptTokenIds,
    StoppingParameters Stopping,
    SamplingParameters? Sampling = null,
    object? ImageEmbeddings = null,
    int ImageOffset = 0,
    string? CallerId = null)
{
    /// <summary>Tokens the request may occupy in its KV slot: prompt + max new tokens.</summary>
    public int ReservedTokens => PromptTokenIds.Length + Stopping.MaxNewTokens;
}
