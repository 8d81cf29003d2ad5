using Kosmos2.Kernels;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionMLP: fc2(quick_gelu(fc1(x))).</summary>
public sealed class Kosmos2VisionMLP : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "fc1")]
    private readonly Linear _fc1; // [4096, Dv]

    [ComponentName(Name = "fc2")]
    private readonly Linear _fc2; // [Dv, 4096]

    public Kosmos2VisionMLP(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionMLP))
    {
        _fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: true, device: device, dtype: dtype);
        _fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    private readonly KernelBinding _native = new();

    /// <summary>
    /// Native bf16 kernels for fc1/fc2 (null: libtorch); see <see cref="Kosmos2Model.UseVisionKernels"/>. With kernels,
    /// fc1 and fc2 are packed in place for them when they can be, and restored without.
    /// </summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set => _native.Use(value, _fc1.weight!, _fc2.weight!);
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var h = Kosmos2Ops.Linear(hidden, _fc1.weight!, _fc1.bias, Kernels, _native.Packed);
        if (Kernels is { } kernels && NativeOps.Takes(h, _fc1.weight!))
        {
            NativeOps.QuickGeluInPlace(kernels, h); // h is the product's fresh output
        }
        else
        {
            h = Kosmos2Ops.QuickGelu(h);
        }
        return Kosmos2Ops.Linear(h, _fc2.weight!, _fc2.bias, Kernels, _native.Packed).MoveToOuterDisposeScope();
    }
}
