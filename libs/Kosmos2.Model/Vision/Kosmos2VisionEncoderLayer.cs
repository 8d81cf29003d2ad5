using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionEncoderLayer: pre-LN attention and MLP with residuals.</summary>
public sealed class Kosmos2VisionEncoderLayer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "self_attn")]
    private readonly Kosmos2VisionAttention _selfAttn;

    [ComponentName(Name = "layer_norm1")]
    private readonly LayerNorm _layerNorm1; // [Dv]

    [ComponentName(Name = "mlp")]
    private readonly Kosmos2VisionMLP _mlp;

    [ComponentName(Name = "layer_norm2")]
    private readonly LayerNorm _layerNorm2; // [Dv]

    public Kosmos2VisionEncoderLayer(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionEncoderLayer))
    {
        _selfAttn = new Kosmos2VisionAttention(config, device, dtype);
        _layerNorm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        _mlp = new Kosmos2VisionMLP(config, device, dtype);
        _layerNorm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>[B, 257, Dv] → [B, 257, Dv].</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var h = hidden + _selfAttn.forward(Kosmos2Ops.LayerNorm(hidden, _layerNorm1));
        h = h + _mlp.forward(Kosmos2Ops.LayerNorm(h, _layerNorm2));
        return h.MoveToOuterDisposeScope();
    }
}
