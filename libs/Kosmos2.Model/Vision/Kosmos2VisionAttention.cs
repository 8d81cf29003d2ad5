using Kosmos2.Kernels;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionAttention (CLIP): 16 heads, softmax over all 257 tokens, no mask.</summary>
public sealed class Kosmos2VisionAttention : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "q_proj")]
    private readonly Linear _qProj; // [Dv, Dv]

    [ComponentName(Name = "k_proj")]
    private readonly Linear _kProj; // [Dv, Dv]

    [ComponentName(Name = "v_proj")]
    private readonly Linear _vProj; // [Dv, Dv]

    [ComponentName(Name = "out_proj")]
    private readonly Linear _outProj; // [Dv, Dv]

    private readonly int _heads;

    public Kosmos2VisionAttention(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionAttention))
    {
        var d = config.HiddenSize;
        _heads = config.NumAttentionHeads;
        _qProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _kProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _vProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _outProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    private readonly KernelBinding _native = new();

    /// <summary>
    /// Native bf16 kernels for the projections and the attention (null: libtorch); see <see cref="Kosmos2Model.UseVisionKernels"/>. With
    /// kernels, the four projection weights are packed in place for them when they can be, and restored without.
    /// </summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set => _native.Use(value, _qProj.weight!, _kProj.weight!, _vProj.weight!, _outProj.weight!);
    }

    /// <summary>[B, 257, Dv] → [B, 257, Dv].</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var q = Kosmos2Ops.Linear(hidden, _qProj.weight!, _qProj.bias, Kernels, _native.Packed);
        var k = Kosmos2Ops.Linear(hidden, _kProj.weight!, _kProj.bias, Kernels, _native.Packed);
        var v = Kosmos2Ops.Linear(hidden, _vProj.weight!, _vProj.bias, Kernels, _native.Packed);
        var a = Kosmos2Ops.FullAttention(q, k, v, _heads, Kernels);
        return Kosmos2Ops.Linear(a, _outProj.weight!, _outProj.bias, Kernels, _native.Packed).MoveToOuterDisposeScope();
    }
}
