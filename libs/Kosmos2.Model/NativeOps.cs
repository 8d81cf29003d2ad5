using System.Runtime.InteropServices;
using Kosmos2.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// <see cref="Bf16Kernels"/> over TorchSharp tensors' own storage (no copies): contiguous bf16 CPU tensors in,
/// a fresh contiguous tensor out.
/// </summary>
internal static unsafe partial class NativeOps
{
    /// <summary>True when the native kernels can take these tensors (bf16 on the CPU).</summary>
    public static bool Takes(Tensor x, Tensor weight) =>
        x.dtype == ScalarType.BFloat16 && weight.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU;

    /// <summary>x [.., in] · weightᵀ [out, in] (+ bias [out]) → [.., out] in bf16, or float32 with <paramref name="float32Out"/>.</summary>
    public static Tensor Linear(Bf16Kernels kernels, Tensor x, Tensor weight, Tensor? bias, bool float32Out = false)
    {
        using var scope = NewDisposeScope();
        var outFeatures = (int)weight.shape[0];
        var inFeatures = (int)weight.shape[1];
        var input = x.contiguous();
        var rows = (int)(input.NumberOfElements / inFeatures);
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        var y = torch.empty(shape, float32Out ? ScalarType.Float32 : ScalarType.BFloat16, x.device);
        var b = bias?.contiguous();
        kernels.Linear(Bf16(input), rows, inFeatures, Bf16(weight), outFeatures, inFeatures, b is null ? null : Bf16(b), Data(y), outFeatures, float32Out);
        GC.KeepAlive(input);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Attention of each token of <paramref name="qkv"/> ([N, 3D] rows: q, k, v) over its own slot's keys
    /// [0, lengths[t]) in the layer's cache tensors ([slots, H, maxLength, hd]) → [N, D].
    /// </summary>
    public static Tensor Attention(Bf16Kernels kernels, Tensor qkv, Tensor keys, Tensor values, int heads, int[] slots, int[] lengths)
    {
        using var scope = NewDisposeScope();
        var rows = qkv.contiguous();
        var d = rows.shape[^1] / 3;
        var headDim = (int)(d / heads);
        var output = torch.empty([slots.Length, d], ScalarType.BFloat16, qkv.device);
        var headStride = keys.shape[2] * keys.shape[3];
        kernels.Attention(Bf16(rows), 3 * d, Bf16(keys), Bf16(values), heads * headStride, headStride, heads, headDim, slots, lengths,
            1 / MathF.Sqrt(headDim), Bf16(output), d);
        GC.KeepAlive(rows);
        return output.MoveToOuterDisposeScope();
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
