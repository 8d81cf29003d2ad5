using Kosmos2.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Which code runs the decoder's bf16 products and decode attention (<c>Decoder:Kernels</c>): <c>native</c>
/// (<see cref="Bf16Kernels"/>: batch-invariant, the same bits for a sequence whatever runs beside it), <c>torch</c>
/// (libtorch), or <c>auto</c> = native where the CPU has vector kernels (AVX512-BF16, or AVX2 with FMA), else torch.
/// CUDA always takes torch; float32 is unaffected (the kernels are bf16 only). On the AVX2-only 2-core EPYC, libtorch's
/// bf16 products ran 5–6 GFLOP/s and the AVX2 kernels 15–20 at 4–128 rows (2.0–4.0× faster; `Kosmos2.Benchmarks 2
/// kernels`, same run), and the two tied at one row, so auto takes native there too.
/// </summary>
public static class KernelChoice
{
    /// <summary>
    /// libtorch intra-op threads to keep beside the native kernels: 1. What libtorch still runs then (layer norms,
    /// GELU, residual adds, cache writes) is per-row and small, and its OpenMP threads otherwise spin and meet at
    /// barriers on the same cores the kernels use: on the shared 2-core machine (load average 17–34) a full-size bf16
    /// decode step with libtorch at 2 threads took 731 / 4,029 / 4,276 ms at batch 1 / 4 / 16, at 1 thread
    /// 413 / 616 / 853 ms (interleaved in one run).
    /// </summary>
    public const int TorchThreadsBesideNative = 1;

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
            description = "torch (auto: this CPU has neither AVX512-BF16 nor AVX2 with FMA; Kernels=native runs the portable kernels, same bits, slower)";
            return null;
        }
        var kernels = new Bf16Kernels(Bf16Kernels.BestIsa, threads);
        description = $"native {kernels}";
        return kernels;
    }
}
