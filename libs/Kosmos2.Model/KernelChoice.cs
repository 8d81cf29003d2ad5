using Kosmos2.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Which code runs the decoder's bf16 products and decode attention (<c>Decoder:Kernels</c>): <c>native</c>
/// (<see cref="Bf16Kernels"/>: batch-invariant, the same bits for a sequence whatever runs beside it), <c>torch</c>
/// (libtorch), or <c>auto</c> = native where the CPU has AVX512-BF16, else torch. CUDA always takes torch; float32 is
/// unaffected (the kernels are bf16 only).
/// </summary>
public static class KernelChoice
{
    /// <summary>The kernels to use, or null for libtorch; <paramref name="description"/> says which and why (for the log).</summary>
    public static Bf16Kernels? Resolve(string setting, Device device, int threads, out string description)
    {
        var value = (setting ?? "").Trim().ToLowerInvariant();
        if (value is not ("" or "auto" or "native" or "torch"))
        {
            throw new ArgumentException($"Kernels must be native, torch or auto (got '{setting}').", nameof(setting));
        }
        if (value == "torch")
        {
            description = "torch (libtorch products and attention)";
            return null;
        }
        if (device.type != DeviceType.CPU)
        {
            description = $"torch (the native kernels are CPU-only; device {device})";
            return null;
        }
        if (value != "native" && Bf16Kernels.BestIsa == KernelIsa.Portable)
        {
            description = "torch (auto: this CPU has no AVX512-BF16; Kernels=native runs the portable kernels, same bits, slower)";
            return null;
        }
        var kernels = new Bf16Kernels(Bf16Kernels.BestIsa, threads);
        description = $"native {kernels}";
        return kernels;
    }
}
