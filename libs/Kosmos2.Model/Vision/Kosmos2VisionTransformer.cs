using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionTransformer (CLIP ViT, pre-LN, "pre_layrnorm" sic).</summary>
public sealed class Kosmos2VisionTransformer : nn.Module
{
    [ComponentName(Name = "embeddings")]
    private readonly Kosmos2VisionEmbeddings _embeddings;

    [ComponentName(Name = "pre_layrnorm")]
    private readonly LayerNorm _preLayrnorm; // [Dv]

    [ComponentName(Name = "encoder")]
    private readonly Kosmos2VisionEncoder _encoder;

    [ComponentName(Name = "post_layernorm")]
    private readonly LayerNorm _postLayernorm; // [Dv]

    public Kosmos2VisionTransformer(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionTransformer))
    {
        _embeddings = new Kosmos2VisionEmbeddings(config, device, dtype);
        _preLayrnorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        _encoder = new Kosmos2VisionEncoder(config, device, dtype);
        _postLayernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>pixel_values [B, 3, 224, 224] → encoder output [B, 257, Dv]; hidden states only when asked.</summary>
    public Tensor Forward(Tensor pixelValues, List<Tensor>? hiddenStates = null)
    {
        using var scope = NewDisposeScope();
        var h = Kosmos2Ops.LayerNorm(_embeddings.forward(pixelValues), _preLayrnorm);
        var last = _encoder.Forward(h, hiddenStates);
        hiddenStates?.Add(last.alias().DetachFromDisposeScope()); // owned by the caller
        return last.MoveToOuterDisposeScope();
    }

    /// <summary>post_layernorm on every token: Kosmos-2 uses all 257 tokens, not only the pooled class token.</summary>
    public Tensor PostLayerNorm(Tensor lastHiddenState) => Kosmos2Ops.LayerNorm(lastHiddenState, _postLayernorm);
}
