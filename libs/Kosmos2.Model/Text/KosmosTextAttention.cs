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
        var q = Kosmos2Ops.SplitHeads(_qProj.forward(query), _heads);
        var k = Kosmos2Ops.SplitHeads(_kProj.forward(keyValue), _heads);
        var v = Kosmos2Ops.SplitHeads(_vProj.forward(keyValue), _heads);
        return Finish(Kosmos2Ops.Attention(q, k, v, null)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Self-attention through the KV cache: the new keys/values of <paramref name="hidden"/> [B, T, D] are written into
    /// the cache in place (never concatenated), then each row attends to its slot's keys [0, L) under
    /// <paramref name="mask"/> [B, 1, T, L] (null = everything visible).
    /// </summary>
    internal Tensor ForwardCached(Tensor hidden, Kosmos2KvCache cache, int layer, DecoderBatch batch, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var q = Kosmos2Ops.SplitHeads(_qProj.forward(hidden), _heads); // [B, H, T, hd]
        var k = Kosmos2Ops.SplitHeads(_kProj.forward(hidden), _heads);
        var v = Kosmos2Ops.SplitHeads(_vProj.forward(hidden), _heads);
        cache.Write(layer, batch, k, v);
        var (keys, values) = cache.Read(layer, batch); // [B, H, L, hd]
        return Finish(Kosmos2Ops.Attention(q, keys, values, mask)).MoveToOuterDisposeScope();
    }

    private Tensor Finish(Tensor attention)
    {
        var merged = Kosmos2Ops.MergeHeads(attention); // [B, T, D]
        if (_innerAttnLn is not null)
        {
            merged = Kosmos2Ops.LayerNorm(merged, _innerAttnLn);
        }
        return _outProj.forward(merged);
    }
}
