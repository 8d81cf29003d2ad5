using Kosmos2.Kernels;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Mirrors transformers Kosmos2TextBlock: pre-LN self-attention and FFN with residuals. Note the block's
/// <c>final_layer_norm</c> is the pre-FFN norm (HF's naming).
/// </summary>
public sealed class Kosmos2TextBlock : nn.Module
{
    [ComponentName(Name = "self_attn")]
    private readonly KosmosTextAttention _selfAttn;

    [ComponentName(Name = "self_attn_layer_norm")]
    private readonly LayerNorm _selfAttnLayerNorm; // [D]

    [ComponentName(Name = "ffn")]
    private readonly Kosmos2TextFFN _ffn;

    [ComponentName(Name = "final_layer_norm")]
    private readonly LayerNorm _finalLayerNorm; // [D]

    public Kosmos2TextBlock(Kosmos2TextConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2TextBlock))
    {
        _selfAttn = new KosmosTextAttention(config.EmbedDim, config.AttentionHeads, config.LayerNormEps, addInnerAttnLayerNorm: true, device, dtype);
        _selfAttnLayerNorm = nn.LayerNorm(config.EmbedDim, config.LayerNormEps, device: device, dtype: dtype);
        _ffn = new Kosmos2TextFFN(config, device, dtype);
        _finalLayerNorm = nn.LayerNorm(config.EmbedDim, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>See <see cref="KosmosTextAttention.FuseQkv"/>.</summary>
    internal void FuseQkv() => _selfAttn.FuseQkv();

    /// <summary>
    /// Native bf16 kernels for this block's products and attention (null: libtorch). With kernels, the block's weights
    /// are packed in place for them when they can be (bf16 on the CPU, q/k/v fused, 16 features or more and an even input count);
    /// without, they are restored, so libtorch reads them as loaded.
    /// </summary>
    internal void UseKernels(Bf16Kernels? kernels)
    {
        _selfAttn.Kernels = kernels;
        _ffn.Kernels = kernels;
    }

    /// <summary>[B, T, D] or [1, N, D] → same shape, reading and writing layer <paramref name="layer"/> of the cache (see <see cref="KosmosTextAttention.ForwardCached"/>).</summary>
    internal Tensor Forward(Tensor hidden, Kosmos2KvCache cache, int layer, IReadOnlyList<DecoderBatch> batches, IReadOnlyList<Tensor?> masks)
    {
        using var scope = NewDisposeScope();
        var h = hidden + _selfAttn.ForwardCached(Kosmos2Ops.LayerNorm(hidden, _selfAttnLayerNorm), cache, layer, batches, masks);
        h = h + _ffn.forward(Kosmos2Ops.LayerNorm(h, _finalLayerNorm));
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>True when <see cref="ForwardNative"/> can run this block (its q/k/v fused).</summary>
    internal bool RunsNative => _selfAttn.HasFusedQkv;

    /// <summary>The same block on the native kernels over <paramref name="pass"/>'s buffers: <see cref="NativeLayerPass.Hidden"/> is updated in place.</summary>
    internal void ForwardNative(NativeLayerPass pass, Kosmos2KvCache cache, int layer)
    {
        NativeOps.LayerNormInto(pass.Kernels, pass.Hidden, _selfAttnLayerNorm, pass.Normed);
        _selfAttn.ForwardNative(pass, cache, layer);
        NativeOps.AddInto(pass.Kernels, pass.Hidden, pass.Out);
        NativeOps.LayerNormInto(pass.Kernels, pass.Hidden, _finalLayerNorm, pass.Normed);
        _ffn.ForwardNative(pass);
        NativeOps.AddInto(pass.Kernels, pass.Hidden, pass.Out);
    }
}
