using System.Runtime.InteropServices;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Model;

namespace Kosmos2.VisionWorker.Caching;

/// <summary>Converts embeddings between float32 and bfloat16 bytes (round to nearest even, as torch does).</summary>
public static class EmbeddingDTypes
{
    public static CachedEmbeddings Convert(CachedEmbeddings source, TensorDType target)
    {
        if (source.DType == target)
        {
            return source;
        }
        return (source.DType, target) switch
        {
            (TensorDType.Float32, TensorDType.Bfloat16) => source with { DType = target, Data = ToBFloat16(MemoryMarshal.Cast<byte, float>(source.Data)) },
            (TensorDType.Bfloat16, TensorDType.Float32) => source with { DType = target, Data = ToFloat32(MemoryMarshal.Cast<byte, ushort>(source.Data)) },
            _ => throw new ArgumentOutOfRangeException(nameof(target), target, "Unsupported conversion."),
        };
    }

    public static TensorDType Parse(string dtype) =>
        ModelDTypes.Parse(dtype) == TorchSharp.torch.ScalarType.BFloat16 ? TensorDType.Bfloat16 : TensorDType.Float32;

    private static byte[] ToBFloat16(ReadOnlySpan<float> values)
    {
        var result = new byte[values.Length * 2];
        var output = MemoryMarshal.Cast<byte, ushort>(result.AsSpan());
        for (var i = 0; i < values.Length; i++)
        {
            var bits = BitConverter.SingleToUInt32Bits(values[i]);
            output[i] = float.IsNaN(values[i]) ? (ushort)0x7FC0 : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
        }
        return result;
    }

    private static byte[] ToFloat32(ReadOnlySpan<ushort> values)
    {
        var result = new byte[values.Length * 4];
        var output = MemoryMarshal.Cast<byte, uint>(result.AsSpan());
        for (var i = 0; i < values.Length; i++)
        {
            output[i] = (uint)values[i] << 16;
        }
        return result;
    }
}
