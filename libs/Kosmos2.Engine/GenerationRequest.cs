namespace Kosmos2.Engine;

/// <summary>
/// A request's image embeddings, opaque to the engine but for their row count (the engine checks they fit the
/// prompt); the runner turns them into a tensor when it prefills the chunk that covers the image positions.
/// </summary>
public interface IImagePayload
{
    /// <summary>Embedding rows = image positions in the prompt (64 for Kosmos-2).</summary>
    int Rows { get; }
}

/// <summary>
/// What a caller submits: plain data, no tensors. The engine never copies or mutates it, and hands it to the
/// runner with every chunk and row, so the caller must not change the arrays after submitting.
/// </summary>
/// <param name="PromptTokenIds">The whole prompt, including the image placeholders.</param>
/// <param name="Stopping">When to stop.</param>
/// <param name="Sampling">How to pick tokens; null = greedy.</param>
/// <param name="ImageEmbeddings">Null for a prompt without an image.</param>
/// <param name="ImageOffset">Index in <paramref name="PromptTokenIds"/> of the first image position (<c>KosmosPrompt.ImageOffset</c>).</param>
public sealed record GenerationRequest(
    ReadOnlyMemory<int> PromptTokenIds,
    StoppingParameters Stopping,
    SamplingParameters? Sampling = null,
    IImagePayload? ImageEmbeddings = null,
    int ImageOffset = 0);
