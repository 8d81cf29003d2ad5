using System.Runtime.InteropServices;
using Kosmos2.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// <see cref="Bf16Kernels"/> over TorchSharp tensors' own storage (no copies): contiguous bf16 CPU tensors in, and a
/// fresh contiguous tensor out (<see cref="Linear"/>) or the result written into a tensor the caller owns (the
/// <c>…Into</c> forms, for <see cref="Text.NativeLayerPass"/>'s buffers).
/// </summary>
internal static unsafe partial class NativeOps
{
    /// <summary>True when the native kernels can take these tensors (bf16 on the CPU).</summary>
    public static bool Takes(Tensor x, Tensor weight) =>
        x.dtype == ScalarType.BFloat16 && weight.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU;

    /// <summary>
    /// x [.., in] · weightᵀ [out, in] (+ bias [out]) → [.., out] in bf16, or float32 with <paramref name="float32Out"/>;
    /// <paramref name="packed"/>: the weight is in <see cref="Bf16Kernels.Pack"/>'s layout.
    /// </summary>
    public static Tensor Linear(Bf16Kernels kernels, Tensor x, Tensor weight, Tensor? bias, bool float32Out = false, bool packed = false)
    {
        using var scope = NewDisposeScope();
        var input = x.contiguous();
        var shape = x.shape.ToArray();
        shape[^1] = weight.shape[0];
        var y = torch.empty(shape, float32Out ? ScalarType.Float32 : ScalarType.BFloat16, x.device);
        Product(kernels, input, weight, bias?.contiguous(), Data(y), float32Out, packed);
        GC.KeepAlive(input);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>x [n, in] · weightᵀ (+ bias) into y [n, out] (bf16, contiguous), no allocation; <paramref name="packed"/> as in <see cref="Linear"/>.</summary>
    public static void LinearInto(Bf16Kernels kernels, Tensor x, Tensor weight, Tensor? bias, Tensor y, bool packed) =>
        Product(kernels, x, weight, bias, Bf16(y), float32Out: false, packed);

    /// <summary>The product of <see cref="Linear"/> and <see cref="LinearInto"/> into <paramref name="y"/> (contiguous rows of [out]).</summary>
    private static void Product(Bf16Kernels kernels, Tensor x, Tensor weight, Tensor? bias, void* y, bool float32Out, bool packed)
    {
        var outFeatures = (int)weight.shape[0];
        var inFeatures = (int)weight.shape[1];
        var rows = (int)(x.NumberOfElements / inFeatures);
        var b = bias is null ? null : Bf16(bias);
        if (packed)
        {
            kernels.LinearPacked(Bf16(x), rows, inFeatures, Bf16(weight), outFeatures, inFeatures, b, y, outFeatures, float32Out);
        }
        else
        {
            kernels.Linear(Bf16(x), rows, inFeatures, Bf16(weight), outFeatures, inFeatures, b, y, outFeatures, float32Out);
        }
    }

    /// <summary>True when <paramref name="weight"/> can be packed in place (<see cref="Pack"/>): a contiguous bf16 CPU [out, in] of packable shape.</summary>
    public static bool Packable(Tensor weight) =>
        weight.dtype == ScalarType.BFloat16 && weight.device_type == DeviceType.CPU && weight.dim() == 2 && weight.is_contiguous()
        && Bf16Kernels.Packs((int)weight.shape[0], (int)weight.shape[1]);

    /// <summary>Rewrites a <see cref="Packable"/> weight in place into <see cref="Bf16Kernels.Pack"/>'s layout, or back with <paramref name="unpack"/>.</summary>
    public static void Pack(Bf16Kernels kernels, Tensor weight, bool unpack) =>
        kernels.Pack(Bf16(weight), (int)weight.shape[0], (int)weight.shape[1], unpack);

    /// <summary>Rows <paramref name="ids"/> (int64, any shape) of a packed weight [V, D] → [.., D] bf16 (<see cref="Bf16Kernels.PackedRows"/>).</summary>
    public static Tensor PackedRows(Tensor weight, Tensor ids)
    {
        using var scope = NewDisposeScope();
        var flat = ids.to(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        var y = torch.empty(shape, ScalarType.BFloat16, weight.device);
        Bf16Kernels.PackedRows(Bf16(weight), (int)weight.shape[0], (int)weight.shape[1], flat, Bf16(y));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>LayerNorm of each row of x [n, w] into y [n, w] (may be x), float32 inside, bf16 out.</summary>
    public static void LayerNormInto(Bf16Kernels kernels, Tensor x, LayerNorm norm, Tensor y)
    {
        var width = (int)x.shape[^1];
        var rows = (int)(x.NumberOfElements / width);
        kernels.LayerNorm(Bf16(x), rows, width, width, Bf16(norm.weight!), Bf16(norm.bias!), (float)norm.eps, Bf16(y), width);
    }

    /// <summary>h += o (bf16, same shape), in place.</summary>
    public static void AddInto(Bf16Kernels kernels, Tensor h, Tensor o)
    {
        var hp = Bf16(h);
        kernels.Add(hp, Bf16(o), hp, h.NumberOfElements);
    }

    /// <summary>
    /// Writes each token's key and value (the k and v thirds of its <paramref name="qkv"/> row [N, 3D]) into the layer's
    /// cache tensors ([slots, H, maxLength, hd]) at its slot and position.
    /// </summary>
    public static void WriteKeysValues(Tensor qkv, Tensor keys, Tensor values, int heads, int[] slots, int[] positions)
    {
        var d = (int)(qkv.shape[^1] / 3);
        var headDim = d / heads;
        var headStride = keys.shape[2] * headDim;
        var slotStride = heads * headStride;
        var source = Bf16(qkv);
        var keyData = Bf16(keys);
        var valueData = Bf16(values);
        for (var t = 0; t < slots.Length; t++)
        {
            var row = source + (long)t * 3 * d;
            var at = slots[t] * slotStride + (long)positions[t] * headDim;
            for (var h = 0; h < heads; h++)
            {
                new ReadOnlySpan<ushort>(row + d + h * headDim, headDim).CopyTo(new Span<ushort>(keyData + at + h * headStride, headDim));
                new ReadOnlySpan<ushort>(row + 2 * d + h * headDim, headDim).CopyTo(new Span<ushort>(valueData + at + h * headStride, headDim));
            }
        }
    }

    /// <summary>
    /// Attention of each token of <paramref name="qkv"/> ([N, 3D] rows: q, k, v) over its own slot's keys
    /// [0, lengths[t]) in the layer's cache tensors ([slots, H, maxLength, hd]) into <paramref name="output"/> [N, D].
    /// </summary>
    public static void AttentionInto(Bf16Kernels kernels, Tensor qkv, Tensor keys, Tensor values, int heads, int[] slots, int[] lengths, Tensor output)
    {
        var d = qkv.shape[^1] / 3;
        var headDim = (int)(d / heads);
        var headStride = keys.shape[2] * keys.shape[3];
        kernels.Attention(Bf16(qkv), 3 * d, Bf16(keys), Bf16(values), heads * headStride, headStride, heads, headDim, slots, lengths,
            1 / MathF.Sqrt(headDim), Bf16(output), d);
    }

    /// <summary>True when <see cref="FullAttentionInto"/> takes heads of this size.</summary>
    public static bool TakesFullAttention(long width, int heads) => width % heads == 0 && Bf16Kernels.EncoderAttentionTakes((int)(width / heads));

    /// <summary>
    /// Unmasked attention of each image's queries over all of that image's keys (the vision encoder's self-attention,
    /// the projection's cross-attention; <see cref="Bf16Kernels.EncoderAttention"/>): q [B, T, D], keys/values
    /// [B, L, D] (contiguous, heads side by side in D) into <paramref name="output"/> [B, T, D].
    /// </summary>
    public static void FullAttentionInto(Bf16Kernels kernels, Tensor q, Tensor keys, Tensor values, int heads, Tensor output)
    {
        var d = q.shape[2];
        var headDim = (int)(d / heads);
        kernels.EncoderAttention(Bf16(q), d, Bf16(keys), Bf16(values), d, (int)q.shape[0], (int)q.shape[1], (int)keys.shape[1], heads, headDim,
            1 / MathF.Sqrt(headDim), Bf16(output), d);
    }

    /// <summary>x = quick_gelu(x) in place (bf16, contiguous); see <see cref="Bf16Kernels.QuickGelu"/>.</summary>
    public static void QuickGeluInPlace(Bf16Kernels kernels, Tensor x)
    {
        var p = Bf16(x);
        kernels.QuickGelu(p, p, x.NumberOfElements);
    }

    /// <summary>The values of a contiguous float32 CPU tensor, valid while it lives.</summary>
    public static ReadOnlySpan<float> Floats(Tensor t)
    {
        if (t.dtype != ScalarType.Float32)
        {
            throw new ArgumentException($"Expected a float32 tensor, got {t.dtype}.");
        }
        return new ReadOnlySpan<float>(Data(t), checked((int)t.NumberOfElements));
    }

    private static ushort* Bf16(Tensor t)
    {
        if (t.dtype != ScalarType.BFloat16)
        {
            throw new ArgumentException($"Native kernels take bfloat16 tensors, got {t.dtype}.");
        }
        return (ushort*)Data(t);
    }

    private static void* Data(Tensor t)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous())
        {
            throw new ArgumentException("Native kernels take contiguous CPU tensors.");
        }
        var data = THSTensor_data(t.Handle);
        if (data == IntPtr.Zero)
        {
            throw new InvalidOperationException("libtorch returned no data pointer for a tensor.");
        }
        return (void*)data;
    }

    // LibTorchSharp's accessor behind Tensor.data<T>(): at::Tensor::data_ptr(), storage offset included.
    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr tensor);
}
