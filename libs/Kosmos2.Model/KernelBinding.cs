using Kosmos2.Kernels;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// The native kernels one module's products run on, and the layout of its weights for them: with kernels, the weights
/// are packed in place (<see cref="Bf16Kernels.Pack"/>) when every one of them can be; without, they are restored, so
/// libtorch reads them as loaded. The one place where a module's weights change layout.
/// </summary>
internal sealed class KernelBinding
{
    /// <summary>The kernels in use; null: libtorch.</summary>
    public Bf16Kernels? Kernels { get; private set; }

    /// <summary>True while the module's weights are in <see cref="Bf16Kernels.Pack"/>'s layout.</summary>
    public bool Packed { get; private set; }

    /// <summary>Switches to <paramref name="kernels"/>, packing or restoring <paramref name="weights"/> (none: nothing to pack).</summary>
    public void Use(Bf16Kernels? kernels, params Tensor[] weights)
    {
        var pack = kernels is not null && weights.Length > 0 && weights.All(NativeOps.Packable);
        var packer = kernels ?? Kernels;
        if (pack != Packed && packer is not null)
        {
            foreach (var weight in weights)
            {
                NativeOps.Pack(packer, weight, unpack: !pack);
            }
            Packed = pack;
        }
        Kernels = kernels;
    }
}
