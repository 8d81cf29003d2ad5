using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>Which logits a decoder call returns.</summary>
public enum LogitsMode
{
    /// <summary>Only each row's last position: [B, V] (the lm_head over 65,037 × 2048 is the costliest product).</summary>
    Last,

    /// <summary>Every position: [B, T, V] (tests, scoring).</summary>
    All,

    /// <summary>No lm_head at all (chunked prefill of a non-final chunk).</summary>
    None,
}

/// <summary>
/// The general decoder call: B rows × T new tokens; row b's tokens go to cache slot <see cref="Slots"/>[b] at positions
/// [<see cref="Starts"/>[b], Starts[b]+T). Prefill, chunked prefill, batched decode and HF-style left-padded batches
/// are all this call with different arguments. Tensors are the caller's (never disposed here).
/// </summary>
/// <param name="Slots">[B] cache slots.</param>
/// <param name="Starts">[B] absolute index in the slot of the first new token.</param>
/// <param name="InputIds">[B, T] int64.</param>
/// <param name="PositionIds">[B, T] int64 rows of the sinusoidal table (HF: 2 for the first real token, 1 for pads).</param>
public sealed record TextForwardInput(long[] Slots, long[] Starts, Tensor InputIds, Tensor PositionIds)
{
    /// <summary>[B, max(Starts)+T]: HF's attention_mask over all keys (1 attend, 0 padding); null = no padding.</summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>[N, D] (or [B', 64, D]) image rows, consumed in row-major order of <see cref="ImageEmbedsPositionMask"/>.</summary>
    public Tensor? ImageEmbeds { get; init; }

    /// <summary>[B, T] 1 where an image row replaces the token embedding.</summary>
    public Tensor? ImageEmbedsPositionMask { get; init; }

    public LogitsMode Logits { get; init; } = LogitsMode.Last;

    /// <summary>When set, receives layers+1 hidden states [B, T, D] (HF order: input, each layer's input, final-normed output), detached from dispose scopes: the caller disposes them.</summary>
    public List<Tensor>? HiddenStates { get; init; }
}
