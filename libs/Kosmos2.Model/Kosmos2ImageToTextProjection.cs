using Kosmos2.Kernels;
using Kosmos2.Model.Text;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Mirrors transformers Kosmos2ImageToTextProjection: dense(features), then one cross-attention whose queries are the
/// 64 learned latent queries and whose keys/values are concat(dense(features), latent_query) (image tokens first).
/// </summary>
public sealed class Kosmos2ImageToTextProjection : nn.Module<Tensor, Tensor>, IParameterOwner
{
    [ComponentName(Name = "dense")]
    private readonly Linear _dense; // [D, Dv]

    [ComponentName(Name = "latent_query")]
    private Parameter _latentQuery; // [64, D]

    [ComponentName(Name = "x_attn")]
    private readonly KosmosTextAttention _xAttn;

    public Kosmos2ImageToTextProjection(Kosmos2Config config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2ImageToTextProjection))
    {
        var d = config.Text.EmbedDim;
        _dense = nn.Linear(config.Vision.HiddenSize, d, hasBias: true, device: device, dtype: dtype);
        _latentQuery = new Parameter(torch.randn(config.LatentQueryNum, d, dtype: dtype, device: device), requires_grad: false);
        _xAttn = new KosmosTextAttention(d, config.Text.AttentionHeads, config.Text.LayerNormEps, addInnerAttnLayerNorm: false, device, dtype);
        RegisterComponents();
    }

    private readonly KernelBinding _native = new();

    /// <summary>
    /// Native bf16 kernels for dense and x_attn (null: libtorch); see <see cref="Kosmos2Model.UseVisionKernels"/>. With
    /// kernels, their weights are packed in place for them when they can be, and restored without.
    /// </summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set
        {
            _native.Use(value, _dense.weight!);
            _xAttn.Kernels = value;
        }
    }

    /// <summary>image_features [B, 257, Dv] (post-LN, L2-normalised) → image_embeds [B, 64, D].</summary>
    public override Tensor forward(Tensor imageFeatures)
    {
        using var scope = NewDisposeScope();
        var h = Kosmos2Ops.Linear(imageFeatures.to(_dense.weight!.dtype), _dense.weight!, _dense.bias, Kernels, _native.Packed); // [B, 257, D]
        var latent = _latentQuery.unsqueeze(0).expand(h.shape[0], -1, -1); // [B, 64, D]
        var keyValue = torch.cat([h, latent], dim: 1); // [B, 321, D]
        return _xAttn.ForwardCross(latent, keyValue).MoveToOuterDisposeScope();
    }

    void IParameterOwner.SetParameter(string name, Parameter value)
    {
        if (name != "latent_query")
        {
            throw new ArgumentException($"Kosmos2ImageToTextProjection has no raw parameter '{name}'.", nameof(name));
        }
        _latentQuery.Dispose();
        _latentQuery = value;
        ConditionallyRegisterParameter(name, value);
    }
}
