using Kosmos2.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Mirrors transformers Kosmos2TextTransformer (<c>text_model.model</c>): token embedding with image insertion,
/// ×sqrt(D), sinusoidal positions, 24 sub-LN blocks reading/writing the KV cache, final <c>layer_norm</c>.
/// </summary>
public sealed class Kosmos2TextTransformer : nn.Module
{
    [ComponentName(Name = "embed_tokens")]
    private readonly Embedding _embedTokens; // weight [V, D]

    [ComponentName(Name = "layers")]
    private readonly ModuleList<Kosmos2TextBlock> _layers;

    [ComponentName(Name = "layer_norm")]
    private readonly LayerNorm _layerNorm; // [D]

    private readonly Kosmos2TextSinusoidalPositionalEmbedding _embedPositions;
    private readonly Kosmos2TextConfig _config;
    private readonly double _embedScale;

    public Kosmos2TextTransformer(Kosmos2TextConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2TextTransformer))
    {
        _config = config;
        _embedScale = config.ScaleEmbedding ? Math.Sqrt(config.EmbedDim) : 1.0;
        _embedTokens = nn.Embedding(config.VocabSize, config.EmbedDim, padding_idx: config.PadTokenId, device: device, dtype: dtype);
        _layers = new ModuleList<Kosmos2TextBlock>(
            Enumerable.Range(0, config.Layers).Select(_ => new Kosmos2TextBlock(config, device, dtype)).ToArray());
        _layerNorm = nn.LayerNorm(config.EmbedDim, config.LayerNormEps, device: device, dtype: dtype);
        // The table lives where the weights live; on the meta device (shape-only models) it is never used.
        var tableDevice = device is null || device.type == DeviceType.META ? torch.CPU : device;
        _embedPositions = new Kosmos2TextSinusoidalPositionalEmbedding(config.MaxPositionEmbeddings, config.EmbedDim, config.PadTokenId, tableDevice);
        RegisterComponents();
    }

    /// <summary>The token embedding (its weight is also the tied <c>lm_head</c> weight).</summary>
    public Embedding EmbedTokens => _embedTokens;

    /// <summary>
    /// Decoder input: embed_tokens(ids), image rows written where <paramref name="imageMask"/> is set (row-major, as HF's
    /// boolean assignment), THEN ×sqrt(D) (image rows included), then + positions.
    /// </summary>
    /// <param name="inputIds">[B, T] int64.</param>
    /// <param name="positionIds">[B, T] int64 rows of the sinusoidal table.</param>
    /// <param name="imageEmbeds">[N, D]: one row per set entry of <paramref name="imageMask"/>.</param>
    /// <param name="imageMask">[B, T] bool.</param>
    internal Tensor Embed(Tensor inputIds, Tensor positionIds, long maxPositionId, Tensor? imageEmbeds, Tensor? imageMask)
    {
        using var scope = NewDisposeScope();
        var x = _table.Packed // the table is also lm_head's weight, packed for it: read its rows from that layout
            ? NativeOps.PackedRows(_embedTokens.weight!, inputIds)
            : _embedTokens.forward(inputIds); // [B, T, D]
        if (imageEmbeds is not null && imageMask is not null)
        {
            x.index_put_(imageEmbeds.to(x.dtype).reshape(-1, x.shape[2]), imageMask);
        }
        x = x * _embedScale;
        var positions = _embedPositions.Lookup(positionIds, maxPositionId).to(x.dtype);
        return (x + positions).MoveToOuterDisposeScope();
    }

    /// <summary>Fuses each block's q/k/v projections (see <see cref="KosmosTextAttention.FuseQkv"/>); idempotent.</summary>
    internal void FuseQkv()
    {
        foreach (var block in _layers)
        {
            block.FuseQkv();
        }
    }

    private readonly KernelBinding _table = new();

    /// <summary>Native bf16 kernels for every block and the tied lm_head (null: libtorch).</summary>
    internal Bf16Kernels? Kernels => _table.Kernels;

    /// <summary>True while the token table (= lm_head's weight) is in <see cref="Bf16Kernels.Pack"/>'s layout.</summary>
    internal bool TablePacked => _table.Packed;

    /// <summary>
    /// Switches every block, and the token table that lm_head shares, to <paramref name="kernels"/>: with kernels the table
    /// is packed for lm_head's product (its last vocab % 16 rows stay stored) and <see cref="Embed"/> reads its rows from
    /// that layout; without, it is restored.
    /// </summary>
    internal void UseKernels(Bf16Kernels? kernels)
    {
        _table.Use(kernels, _embedTokens.weight!);
        foreach (var block in _layers)
        {
            block.UseKernels(kernels);
        }
    }

    /// <summary>
    /// Runs the blocks through the cache over x: [B, T, D] for one batch, or [1, N, D] holding several batches' tokens
    /// flattened in order (<see cref="DecoderBatch.TokenOffset"/>); records each slot's new length in the cache and
    /// returns the final-normed hidden states, same shape.
    /// <paramref name="keyPadding"/> [B, L] (1 = attend, 0 = padding key; one batch only) reproduces HF's attention_mask.
    /// </summary>
    internal Tensor Forward(Tensor x, Kosmos2KvCache cache, IReadOnlyList<DecoderBatch> batches, Tensor? keyPadding, List<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        if (keyPadding is not null && batches.Count != 1)
        {
            throw new ArgumentException("A key-padding mask needs a forward of exactly one batch.", nameof(keyPadding));
        }
        Tensor h;
        if (Kernels is not null && keyPadding is null && NativeOps.Takes(x, x) && _layers.All(block => block.RunsNative))
        {
            // Native kernels: each token attends to its own keys (no mask); HF-style key padding keeps libtorch's masked SDPA.
            var pass = new NativeLayerPass(Kernels, x, batches, cache, _config);
            var layer = 0;
            foreach (var block in _layers)
            {
                hiddenStates?.Add(pass.Hidden.clone().view(x.shape).DetachFromDisposeScope()); // owned by the caller
                block.ForwardNative(pass, cache, layer++);
            }
            h = pass.Hidden.view(x.shape);
        }
        else
        {
            var masks = batches.Select(batch => BuildMask(batch, keyPadding, x.dtype, x.device)).ToArray();
            h = x;
            var layer = 0;
            foreach (var block in _layers)
            {
                hiddenStates?.Add(h.alias().DetachFromDisposeScope()); // owned by the caller
                h = block.Forward(h, cache, layer++, batches, masks);
            }
        }
        foreach (var batch in batches)
        {
            for (var b = 0; b < batch.Count; b++)
            {
                var slot = (int)batch.Slots[b];
                cache.SetLength(slot, Math.Max(cache.Length(slot), (int)(batch.Starts[b] + batch.NewTokens)));
            }
        }
        h = Kosmos2Ops.LayerNorm(h, _layerNorm);
        hiddenStates?.Add(h.alias().DetachFromDisposeScope()); // owned by the caller
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Additive mask [A, 1, T, L] (A = <see cref="DecoderBatch.AttentionRows"/>): key j visible to query t of row b iff j ≤ start_b + t (causal, and it hides keys
    /// past a shorter row's length) and the key is not padding. Entries are the dtype's min (HF: finfo.min), not −inf,
    /// so a fully masked padding query stays finite. Null when every key is visible (single-row decode).
    /// </summary>
    private static Tensor? BuildMask(DecoderBatch batch, Tensor? keyPadding, ScalarType dtype, Device device)
    {
        if (keyPadding is null && batch.NewTokens == 1 && batch.SameStart)
        {
            return null;
        }
        var l = batch.KeyLength;
        var t = batch.NewTokens;
        var keys = torch.arange(l, ScalarType.Int64, device).view(1, 1, l);
        var queries = batch.StartsTensor.view(-1, 1, 1) + torch.arange(t, ScalarType.Int64, device).view(1, t, 1);
        var allowed = keys.le(queries); // [B, T, L]
        if (keyPadding is not null)
        {
            if (keyPadding.shape[1] != l)
            {
                throw new ArgumentException($"attention mask has {keyPadding.shape[1]} keys, the cache holds {l}.", nameof(keyPadding));
            }
            allowed = allowed.logical_and(keyPadding.to(ScalarType.Bool).to(device).unsqueeze(1));
        }
        if (batch.RowsInRange is not null)
        {
            // Range rows outside the batch see every key: their output is dropped, it only has to stay finite.
            allowed = torch.ones([batch.AttentionRows, t, l], ScalarType.Bool, device).index_copy_(0, batch.RowsInRange, allowed);
        }
        return torch.zeros([allowed.shape[0], 1, t, l], dtype, device)
            .masked_fill(allowed.logical_not().unsqueeze(1), Kosmos2Ops.MaskMin(dtype));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _embedPositions.Dispose();
        }
        base.Dispose(disposing);
    }

    internal Kosmos2TextConfig Config => _config;
}
