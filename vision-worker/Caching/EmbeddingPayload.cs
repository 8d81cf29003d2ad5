using System.Buffers.Binary;
using System.IO.Hashing;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.VisionWorker.Caching;

/// <summary>
/// The cached form of one image's embeddings: a 40-byte header, then the raw tensor bytes.
/// The header is checked on every read so a truncated, foreign or bit-flipped value is recomputed, never served:
/// <code>
/// 0  "K2EB"    magic
/// 4  u8        format version (1)
/// 5  u8        dtype (TensorDType)
/// 6  u16       reserved (0)
/// 8  u32       rows (64)
/// 12 u32       columns (hidden size)
/// 16 u32       payload length in bytes
/// 20 u32       original image width (pixels; a hit by hash alone still knows the image's frame)
/// 24 u32       original image height
/// 28 u32       reserved (0)
/// 32 u64       XxHash64 of the header's bytes 0..31 and the payload
/// 40 ...       payload, little-endian, row-major
/// </code>
/// </summary>
public static class EmbeddingPayload
{
    public const int HeaderSize = 40;
    private const byte FormatVersion = 1;
    private static ReadOnlySpan<byte> Magic => "K2EB"u8;

    /// <summary>Wraps tensor bytes with a header.</summary>
    public static byte[] Encode(TensorDType dtype, int rows, int columns, int imageWidth, int imageHeight, ReadOnlySpan<byte> data)
    {
        if (data.Length != rows * columns * ElementSize(dtype))
        {
            throw new ArgumentException($"Expected {rows}×{columns} {dtype} = {rows * columns * ElementSize(dtype)} bytes, got {data.Length}.", nameof(data));
        }
        var value = new byte[HeaderSize + data.Length];
        var header = value.AsSpan(0, HeaderSize);
        Magic.CopyTo(header);
        header[4] = FormatVersion;
        header[5] = (byte)dtype;
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)rows);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)columns);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], (uint)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], (uint)imageWidth);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], (uint)imageHeight);
        data.CopyTo(value.AsSpan(HeaderSize));
        BinaryPrimitives.WriteUInt64LittleEndian(header[32..], Checksum(value));
        return value;
    }

    /// <summary>Reads a cached value; null when it is damaged or not what <paramref name="expectedDType"/> and the shape say.</summary>
    public static CachedEmbeddings? TryDecode(ReadOnlySpan<byte> value, TensorDType expectedDType, int expectedRows, int expectedColumns)
    {
        if (value.Length < HeaderSize || !value[..4].SequenceEqual(Magic) || value[4] != FormatVersion)
        {
            return null;
        }
        var dtype = (TensorDType)value[5];
        var rows = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[8..]);
        var columns = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[12..]);
        var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[16..]);
        var width = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[20..]);
        var height = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[24..]);
        var hash = BinaryPrimitives.ReadUInt64LittleEndian(value[32..]);
        var payload = value[HeaderSize..];
        if (dtype != expectedDType || rows != expectedRows || columns != expectedColumns
            || length != payload.Length || length != rows * columns * ElementSize(dtype)
            || Checksum(value) != hash)
        {
            return null;
        }
        return new CachedEmbeddings(dtype, rows, columns, width, height, payload.ToArray());
    }

    private static ulong Checksum(ReadOnlySpan<byte> value)
    {
        var hash = new XxHash64();
        hash.Append(value[..32]);
        hash.Append(value[HeaderSize..]);
        return hash.GetCurrentHashAsUInt64();
    }

    public static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.Float32 => 4,
        TensorDType.Bfloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unsupported tensor dtype."),
    };
}

/// <summary>One image's embeddings as raw bytes: [rows, columns] of <see cref="DType"/>, and the original image's size.</summary>
public sealed record CachedEmbeddings(TensorDType DType, int Rows, int Columns, int ImageWidth, int ImageHeight, byte[] Data);
