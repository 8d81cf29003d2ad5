using Kosmos2.Kernels;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>Mirrors transformers Kosmos2TextFFN: fc2(ffn_layernorm(gelu_erf(fc1(x)))) — sub-LN at width ffn_dim.</summary>
public sealed class Kosmos2TextFFN : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "fc1")]
    private readonly Linear _fc1; // [ffn, D]

    [ComponentName(Name = "fc2")]
    private readonly Linear _fc2; // [D, ffn]

    [ComponentName(Name = "ffn_layernorm")]
    private readonly LayerNorm _ffnLayernorm; // [ffn]

    public Kosmos2TextFFN(Kosmos2TextConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2TextFFN))
    {
        _fc1 = nn.Linear(config.EmbedDim, config.FfnDim, hasBias: true, device: device, dtype: dtype);
        _fc2 = nn.Linear(config.FfnDim, config.EmbedDim, hasBias: true, device: device, dtype: dtype);
        _ffnLayernorm = nn.LayerNorm(config.FfnDim, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    private readonly KernelBinding _native = new();

    /// <summary>Native bf16 kernels for fc1/fc2 (null: libtorch); with kernels, fc1 and fc2 are packed in place for them when they can be.</summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set => _native.Use(value, _fc1.weight!, _fc2.weight!);
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.gelu(Kosmos2Ops.Linear(hidden, _fc1.weight!, _fc1.bias, Kernels, _native.Packed)); // exact erf GELU
        h = Kosmos2Ops.LayerNorm(h, _ffnLayernorm);
        return Kosmos2Ops.Linear(h, _fc2.weight!, _fc2.bias, Kernels, _native.Packed).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="forward"/> on the native kernels: <see cref="NativeLayerPass.Normed"/> → <see cref="NativeLayerPass.Out"/>.
    /// GELU is libtorch's, in place (the same erf GELU as <see cref="forward"/>, bit for bit).
    /// </summary>
    internal void ForwardNative(NativeLayerPass pass)
    {
        NativeOps.LinearInto(pass.Kernels, pass.Normed, _fc1.weight!, _fc1.bias, pass.Wide, _native.Packed);
        pass.Wide.gelu_();
        NativeOps.LayerNormInto(pass.Kernels, pass.Wide, _ffnLayernorm, pass.Wide);
        NativeOps.LinearInto(pass.Kernels, pass.Wide, _fc2.weight!, _fc2.bias, pass.Out, _native.Packed);
    }
}
