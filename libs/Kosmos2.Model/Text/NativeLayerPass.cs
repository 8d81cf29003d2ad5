using Kosmos2.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// One forward of the decoder blocks on the native bf16 kernels (<see cref="Kosmos2TextBlock.ForwardNative"/>): the
/// hidden rows and every intermediate live in buffers allocated once per forward and reused by all layers, and each
/// layer is a fixed sequence of native calls on them (norms, products, cache writes, attention, residual adds) plus
/// libtorch's in-place GELU. The tensor-op form of a layer made ~40 libtorch calls, each allocating a tensor: 7–11 ms
/// of a 57 ms one-row step and 24 ms of a 150 ms 16-row step on a 2-core Zen 5 (2026-12-03), for ≈ 1 ms of arithmetic.
/// Every token attends to its own slot's keys [0, its position] (no mask), as <see cref="Bf16Kernels.Attention"/> does,
/// so a row's bits never depend on the other rows. Tensors are owned by the caller's dispose scope.
/// </summary>
internal sealed class NativeLayerPass
{
    public NativeLayerPass(Bf16Kernels kernels, Tensor x, IReadOnlyList<DecoderBatch> batches, Kosmos2KvCache cache, Kosmos2TextConfig config)
    {
        Kernels = kernels;
        var d = x.shape[^1];
        var tokens = x.NumberOfElements / d;
        Hidden = x.reshape(tokens, d).contiguous().clone(); // residual stream, updated in place layer by layer
        Normed = torch.empty([tokens, d], ScalarType.BFloat16, x.device);
        Qkv = torch.empty([tokens, 3 * d], ScalarType.BFloat16, x.device);
        Attended = torch.empty([tokens, d], ScalarType.BFloat16, x.device);
        Out = torch.empty([tokens, d], ScalarType.BFloat16, x.device);
        Wide = torch.empty([tokens, config.FfnDim], ScalarType.BFloat16, x.device);

        var slots = new List<int>((int)tokens);
        var positions = new List<int>((int)tokens);
        foreach (var batch in batches)
        {
            if (batch.TokenOffset != slots.Count)
            {
                throw new ArgumentException("Batches must cover the forward's tokens in order.", nameof(batches));
            }
            for (var b = 0; b < batch.Count; b++)
            {
                for (var t = 0; t < batch.NewTokens; t++)
                {
                    var slot = (int)batch.Slots[b];
                    var position = (int)batch.Starts[b] + t;
                    ArgumentOutOfRangeException.ThrowIfNegative(slot);
                    ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, cache.Slots);
                    if (position >= cache.MaxLength)
                    {
                        throw new InvalidOperationException($"KV cache overflow: {position + 1} positions needed, {cache.MaxLength} allocated per slot.");
                    }
                    slots.Add(slot);
                    positions.Add(position);
                }
            }
        }
        if (slots.Count != tokens)
        {
            throw new ArgumentException($"The batches hold {slots.Count} tokens, the input {tokens}.", nameof(batches));
        }
        Slots = [.. slots];
        Positions = [.. positions];
        Lengths = [.. positions.Select(p => p + 1)];
    }

    public Bf16Kernels Kernels { get; }

    /// <summary>[N, D]: the residual stream.</summary>
    public Tensor Hidden { get; }

    /// <summary>[N, D]: a norm's output, the next product's input.</summary>
    public Tensor Normed { get; }

    /// <summary>[N, 3D]: fused q/k/v rows.</summary>
    public Tensor Qkv { get; }

    /// <summary>[N, D]: attention output (merged heads).</summary>
    public Tensor Attended { get; }

    /// <summary>[N, D]: a sub-layer's output before its residual add.</summary>
    public Tensor Out { get; }

    /// <summary>[N, ffn]: fc1's output, GELU and ffn_layernorm in place.</summary>
    public Tensor Wide { get; }

    /// <summary>Per token: its slot.</summary>
    public int[] Slots { get; }

    /// <summary>Per token: its cache index (where its key and value are written).</summary>
    public int[] Positions { get; }

    /// <summary>Per token: keys it attends to (its position + 1).</summary>
    public int[] Lengths { get; }
}
