using Kosmos2.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Mirrors transformers KosmosTextAttention: the decoder's self-attention (with the MAGNETO sub-LN
/// <c>inner_attn_ln</c> on the merged heads before <c>out_proj</c>) and the projection's cross-attention
/// <c>x_attn</c> (same layout, no <c>inner_attn_ln</c>).
/// </summary>
public sealed class KosmosTextAttention : nn.Module
{
    [ComponentName(Name = "q_proj")]
    private readonly Linear _qProj; // [D, D]

    [ComponentName(Name = "k_proj")]
    private readonly Linear _kProj; // [D, D]

    [ComponentName(Name = "v_proj")]
    private readonly Linear _vProj; // [D, D]

    [ComponentName(Name = "out_proj")]
    private readonly Linear _outProj; // [D, D]

    [ComponentName(Name = "inner_attn_ln")]
    private readonly LayerNorm? _innerAttnLn; // [D]; null in x_attn

    private readonly int _heads;

    private Tensor? _qkvWeight; // [3D, D] once fused: q/k/v weights are row views into it
    private Tensor? _qkvBias; // [3D]

    private readonly KernelBinding _native = new();

    /// <summary>
    /// Native bf16 kernels for the products and attention (null: libtorch). Set by <see cref="Kosmos2TextForCausalLM.UseKernels"/>
    /// (the decoder's self-attention) and <see cref="Kosmos2ImageToTextProjection.Kernels"/> (x_attn); with kernels, the
    /// fused q/k/v and out_proj weights, or the four projections' weights where q/k/v are not fused (x_attn), are packed
    /// in place for them when they can be (and restored without), so the q/k/v projections' parameters, views of the
    /// fused weight, read as packed bytes meanwhile.
    /// </summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set => _native.Use(value, HasFusedQkv ? [_qkvWeight!, _outProj.weight!] : [_qProj.weight!, _kProj.weight!, _vProj.weight!, _outProj.weight!]);
    }

    public KosmosTextAttention(int embedDim, int heads, double layerNormEps, bool addInnerAttnLayerNorm, Device? device, ScalarType? dtype)
        : base(nameof(KosmosTextAttention))
    {
        _heads = heads;
        _qProj = nn.Linear(embedDim, embedDim, hasBias: true, device: device, dtype: dtype);
        _kProj = nn.Linear(embedDim, embedDim, hasBias: true, device: device, dtype: dtype);
        _vProj = nn.Linear(embedDim, embedDim, hasBias: true, device: device, dtype: dtype);
        _outProj = nn.Linear(embedDim, embedDim, hasBias: true, device: device, dtype: dtype);
        _innerAttnLn = addInnerAttnLayerNorm ? nn.LayerNorm(embedDim, layerNormEps, device: device, dtype: dtype) : null;
        RegisterComponents();
    }

    /// <summary>Cross-attention without mask (the image-to-text projection): queries [B, Tq, D], keys/values [B, Tk, D].</summary>
    public Tensor ForwardCross(Tensor query, Tensor keyValue)
    {
        using var scope = NewDisposeScope();
        var q = Kosmos2Ops.Linear(query, _qProj.weight!, _qProj.bias, Kernels, _native.Packed);
        var k = Kosmos2Ops.Linear(keyValue, _kProj.weight!, _kProj.bias, Kernels, _native.Packed);
        var v = Kosmos2Ops.Linear(keyValue, _vProj.weight!, _vProj.bias, Kernels, _native.Packed);
        return Finish(Kosmos2Ops.FullAttention(q, k, v, _heads, Kernels)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Self-attention through the KV cache for one forward of one or more batches (<paramref name="batches"/>: a step's
    /// decode rows and prompt chunks). q/k/v and out_proj run once over all tokens of <paramref name="hidden"/>
    /// ([B, T, D] for one batch, [1, N, D] for several, flattened in batch order); per batch, its new keys/values are
    /// written into the cache in place (never concatenated), then each row attends to its slot's keys [0, L) under the
    /// batch's mask from <paramref name="masks"/> ([A, 1, T, L], A = <see cref="DecoderBatch.AttentionRows"/>; null =
    /// everything visible). The native kernels' form is <see cref="ForwardNative"/>.
    /// </summary>
    internal Tensor ForwardCached(Tensor hidden, Kosmos2KvCache cache, int layer, IReadOnlyList<DecoderBatch> batches, IReadOnlyList<Tensor?> masks)
    {
        using var scope = NewDisposeScope();
        var qkv = _qkvWeight is not null && _qkvBias is not null
            ? Kosmos2Ops.Linear(hidden, _qkvWeight, _qkvBias, Kernels, _native.Packed)
            : torch.cat([.. new[] { _qProj, _kProj, _vProj }.Select(p => Kosmos2Ops.Linear(hidden, p.weight!, p.bias, Kernels, _native.Packed))], -1); // [B, T, 3D] or [1, N, 3D]
        var merged = new Tensor[batches.Count];
        for (var i = 0; i < batches.Count; i++)
        {
            var batch = batches[i];
            var rows = qkv.reshape(-1, qkv.shape[^1]).narrow(0, batch.TokenOffset, batch.Tokens).view(batch.Count, batch.NewTokens, -1); // views
            var parts = rows.chunk(3, -1); // 3 × [B, T, D] views
            var q = Kosmos2Ops.SplitHeads(parts[0], _heads); // [B, H, T, hd]
            var k = Kosmos2Ops.SplitHeads(parts[1], _heads);
            var v = Kosmos2Ops.SplitHeads(parts[2], _heads);
            cache.Write(layer, batch, k, v);
            var (keys, values) = cache.Read(layer, batch); // [A, H, L, hd]
            var attention = batch.FromAttentionRows(Kosmos2Ops.Attention(batch.ToAttentionRows(q), keys, values, masks[i]));
            merged[i] = Kosmos2Ops.MergeHeads(attention); // [B, T, D]
        }
        var all = merged.Length == 1 ? merged[0] : torch.cat(merged.Select(m => m.reshape(-1, m.shape[^1])).ToArray(), 0);
        return Finish(all.view(hidden.shape)).MoveToOuterDisposeScope();
    }

    /// <summary>True once <see cref="FuseQkv"/> has run.</summary>
    internal bool HasFusedQkv => _qkvWeight is not null && _qkvBias is not null;

    /// <summary>
    /// <see cref="ForwardCached"/> on the native kernels, <see cref="NativeLayerPass.Normed"/> → <see cref="NativeLayerPass.Out"/>:
    /// fused q/k/v, every token's key and value written into the cache, then each token attends to its own slot's keys
    /// [0, its position] in key order (no padded key read), inner_attn_ln, out_proj.
    /// </summary>
    internal void ForwardNative(NativeLayerPass pass, Kosmos2KvCache cache, int layer)
    {
        NativeOps.LinearInto(pass.Kernels, pass.Normed, _qkvWeight!, _qkvBias, pass.Qkv, _native.Packed);
        var (keys, values) = cache.Layer(layer);
        NativeOps.WriteKeysValues(pass.Qkv, keys, values, _heads, pass.Slots, pass.Positions);
        NativeOps.AttentionInto(pass.Kernels, pass.Qkv, keys, values, _heads, pass.Slots, pass.Lengths, pass.Attended);
        NativeOps.LayerNormInto(pass.Kernels, pass.Attended, _innerAttnLn!, pass.Normed);
        NativeOps.LinearInto(pass.Kernels, pass.Normed, _outProj.weight!, _outProj.bias, pass.Out, _native.Packed);
    }

    /// <summary>
    /// Concatenates q/k/v into one [3D, D] weight (and [3D] bias) and rebinds the three projections' parameters as
    /// views of it: same names, shapes and values, no extra memory, and one product per layer instead of three. At batch
    /// 1 in bf16 (2 threads) three [2048, 2048] products cost 3 × 0.59 ms against 0.80 ms for one [6144, 2048]
    /// (<see cref="Kosmos2Ops.Linear"/>), ≈ 33 ms of a 24-layer step. Call after the weights are final (after loading).
    /// </summary>
    internal void FuseQkv()
    {
        if (_qkvWeight is not null || _qProj.weight!.device_type == DeviceType.META)
        {
            return;
        }
        using var noGrad = torch.no_grad();
        var d = _qProj.weight!.shape[0];
        _qkvWeight = torch.cat([_qProj.weight!, _kProj.weight!, _vProj.weight!], 0).DetachFromDisposeScope();
        _qkvBias = torch.cat([_qProj.bias!, _kProj.bias!, _vProj.bias!], 0).DetachFromDisposeScope();
        var projections = new[] { _qProj, _kProj, _vProj };
        for (var i = 0; i < projections.Length; i++)
        {
            // The setters dispose the separate tensors; the views keep the fused storage alive with them.
            projections[i].weight = new Parameter(_qkvWeight.narrow(0, i * d, d), requires_grad: false);
            projections[i].bias = new Parameter(_qkvBias.narrow(0, i * d, d), requires_grad: false);
        }
    }

    /// <summary>Merged heads [.., D] → inner_attn_ln (self-attention only) → out_proj.</summary>
    private Tensor Finish(Tensor merged)
    {
        if (_innerAttnLn is not null)
        {
            merged = Kosmos2Ops.LayerNorm(merged, _innerAttnLn);
        }
        return Kosmos2Ops.Linear(merged, _outProj.weight!, _outProj.bias, Kernels, _native.Packed);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _qkvWeight?.Dispose();
            _qkvBias?.Dispose();
        }
        base.Dispose(disposing);
    }
}
