namespace Kosmos2.Kernels;

/// <summary>Which instructions the kernels run. Both compute every element in the same order (see native/k2kernels.c).</summary>
public enum KernelIsa
{
    /// <summary>Plain C, any x86-64 or other CPU: the reference order, one element at a time (slow).</summary>
    Portable = 0,

    /// <summary>AVX-512 with the BF16 extension (vdpbf16ps): AMD Zen 4+, Intel Cooper Lake / Sapphire Rapids+.</summary>
    Avx512Bf16 = 2,
}
