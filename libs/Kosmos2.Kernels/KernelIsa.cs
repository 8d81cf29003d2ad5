namespace Kosmos2.Kernels;

/// <summary>Which instructions the kernels run. Both compute every element in the same order (see native/k2kernels.c).</summary>
public enum KernelIsa
{
    /// <summary>Plain C, any x86-64 or other CPU: the reference order, one element at a time (slow).</summary>
    Portable = 0,

    /// <summary>AVX2 with FMA: bf16 widened to float32 by a 16-bit shift, the 16 lanes held as two 8-float halves (any x86-64 since Haswell / Zen).</summary>
    Avx2Fma = 1,

    /// <summary>AVX-512 with the BF16 extension (vdpbf16ps): AMD Zen 4+, Intel Cooper Lake / Sapphire Rapids+.</summary>
    Avx512Bf16 = 2,
}
