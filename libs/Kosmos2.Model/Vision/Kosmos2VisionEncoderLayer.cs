using Kosmos2.Kernels;
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

    /// <summary>Native bf16 kernels for the layer norms and residual adds (null: libtorch); see <see cref="Kosmos2Model.UseVisionKernels"/>.</summary>
    internal Bf16Kernels? Kernels { get; set; }

    /// <summary>[B, 257, Dv] → [B, 257, Dv].</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        if (Kernels is { } kernels && NativeOps.Takes(hidden, _layerNorm1.weight!))
        {
            // Per row, on every thread: libtorch ran these on its one thread beside the kernels.
            var input = hidden.contiguous();
            var normed = empty_like(input);
            NativeOps.LayerNormInto(kernels, input, _layerNorm1, normed);
            var attended = _selfAttn.forward(normed);
            NativeOps.AddInto(kernels, attended, input); // hidden + attention (a float add, either order)
            NativeOps.LayerNormInto(kernels, attended, _layerNorm2, normed);
            var output = _mlp.forward(normed);
            NativeOps.AddInto(kernels, output, attended);
            return output.MoveToOuterDisposeScope();
        }
        var h = hidden + _selfAttn.forward(Kosmos2Ops.LayerNorm(hidden, _layerNorm1));
        h = h + _mlp.forward(Kosmos2Ops.LayerNorm(h, _layerNorm2));
        return h.MoveToOuterDisposeScope();
    }
}
