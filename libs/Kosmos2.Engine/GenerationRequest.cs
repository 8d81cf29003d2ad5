namespace Kosmos2.Engine;

/// <summary>
/// A request's image embeddings, opaque to the engine but for their row count (the engine checks they fit the
/// prompt); the runner turns them into a tensor when it prefills the chunk that covers the image positions.
/// </summary>
public interface IImagePayload
{
    /// <summary>Embedding rows = image positions in the prompt (64 for Kosmos-2).</summary>
    int Rows { get; }

    /// <summary>
    /// What identifies the embeddings' content (e.g. a hash of their bytes): two payloads with equal identities must
    /// hold equal embeddings, so a request may reuse KV rows another request computed over them (the prefix cache).
    /// Null = never shared.
    /// </summary>
    string? Identity => null;
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
    int ImageOffset = 0)
{
    /// <summary>Why the engine must refuse this request, or null; the one validation on the way to the model.</summary>
    /// <param name="maxSequenceTokens">Tokens one KV slot holds (<see cref="EngineOptions.MaxSequenceTokens"/>).</param>
    public (RejectionReason Reason, string Message)? Problem(int maxSequenceTokens)
    {
        var prompt = PromptTokenIds.Length;
        var maxNew = Stopping.MaxNewTokens;
        if (prompt == 0)
        {
            return (RejectionReason.Invalid, "The prompt has no tokens.");
        }
        if (maxNew < 1)
        {
            return (RejectionReason.Invalid, $"max_new_tokens must be at least 1 (got {maxNew}).");
        }
        if (Stopping.StopSequences?.Any(s => s is null || s.Length == 0) == true)
        {
            return (RejectionReason.Invalid, "A stop sequence is empty; every stop sequence needs at least one token.");
        }
        if (ImageEmbeddings is { } image && (ImageOffset < 0 || (long)ImageOffset + image.Rows > prompt))
        {
            return (RejectionReason.Invalid, $"image_offset {ImageOffset} + {image.Rows} image rows runs outside the prompt of {prompt} tokens.");
        }
        if (Sampling?.Problem() is { } sampling)
        {
            return (RejectionReason.Invalid, "sampling: " + sampling);
        }
        if ((long)prompt + maxNew > maxSequenceTokens)
        {
            return (RejectionReason.TooLong,
                $"The prompt ({prompt} tokens) + max_new_tokens ({maxNew}) = {(long)prompt + maxNew} exceeds the " +
                $"{maxSequenceTokens}-token context of a KV slot; shorten the prompt or lower max_new_tokens.");
        }
        return null;
    }
}

