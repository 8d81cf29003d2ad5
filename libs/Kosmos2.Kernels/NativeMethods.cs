using System.Runtime.InteropServices;

namespace Kosmos2.Kernels;

/// <summary>The C entry points of native/k2kernels.c (libk2kernels.so, built with this project).</summary>
internal static unsafe partial class NativeMethods
{
    private const string Library = "k2kernels";

    [LibraryImport(Library, EntryPoint = "k2_version")]
    internal static partial int Version();

    [LibraryImport(Library, EntryPoint = "k2_best_isa")]
    internal static partial int BestIsa();

    [LibraryImport(Library, EntryPoint = "k2_kblock_bf16")]
    internal static partial long KBlockBf16();

    [LibraryImport(Library, EntryPoint = "k2_linear_bf16")]
    internal static partial void LinearBf16(ushort* x, long rows, long ldx, ushort* w, long k, long ldw, ushort* bias,
        void* y, long ldy, int yFloat32, long n0, long n1, int isa);

    [LibraryImport(Library, EntryPoint = "k2_attention_bf16")]
    internal static partial int AttentionBf16(ushort* q, ushort* keys, ushort* values, long headStride, long headDim,
        long length, float scale, ushort* output, long h0, long h1, int isa);

    [LibraryImport(Library, EntryPoint = "k2_layer_norm_bf16")]
    internal static partial void LayerNormBf16(ushort* x, long rows, long n, long ldx, ushort* gamma, ushort* beta, float eps,
        ushort* y, long ldy, int isa);

    [LibraryImport(Library, EntryPoint = "k2_add_bf16")]
    internal static partial void AddBf16(ushort* a, ushort* b, ushort* y, long n, int isa);

    [LibraryImport(Library, EntryPoint = "k2_encoder_attention_bf16")]
    internal static partial int EncoderAttentionBf16(ushort* q, long ldq, ushort* k, ushort* v, long ldkv, long queries, long length, long headDim,
        float scale, ushort* output, long ldo, long h0, long h1, int isa);

    [LibraryImport(Library, EntryPoint = "k2_quick_gelu_bf16")]
    internal static partial void QuickGeluBf16(ushort* x, ushort* y, long n, int isa);

    [LibraryImport(Library, EntryPoint = "k2_pack_bf16")]
    internal static partial int PackBf16(ushort* w, long n, long k, int unpack);

    [LibraryImport(Library, EntryPoint = "k2_linear_packed_bf16")]
    internal static partial void LinearPackedBf16(ushort* x, long rows, long ldx, ushort* w, long k, ushort* bias,
        void* y, long ldy, int yFloat32, long g0, long g1, int isa);

    [LibraryImport(Library, EntryPoint = "k2_packed_rows_bf16")]
    internal static partial int PackedRowsBf16(ushort* w, long n, long k, long packedRows, long* ids, long count, ushort* y);
}
