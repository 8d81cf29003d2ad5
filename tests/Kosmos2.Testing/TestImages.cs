using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace Kosmos2.Testing;

/// <summary>Small images made on the fly (PNG written by hand: no image library needed in tests that only send bytes).</summary>
public static class TestImages
{
    /// <summary>An 8-bit RGB PNG of <paramref name="width"/>×<paramref name="height"/> with seeded random pixels: a new image per seed.</summary>
    public static byte[] RandomPng(int width, int height, int seed)
    {
        var random = new Random(seed);
        var rgb = new byte[width * height * 3];
        random.NextBytes(rgb);
        return Png(width, height, rgb);
    }

    /// <summary>Width and height from a PNG's IHDR chunk (the golden images are PNG).</summary>
    public static (int Width, int Height) PngSize(byte[] png) =>
        (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

    /// <summary>Encodes RGB bytes (row-major, 3 per pixel) as a PNG.</summary>
    public static byte[] Png(int width, int height, byte[] rgb)
    {
        using var output = new MemoryStream();
        output.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type RGB
        WritePngChunk(output, "IHDR", header);
        using (var raw = new MemoryStream())
        {
            using (var zlib = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
            {
                for (var y = 0; y < height; y++)
                {
                    zlib.WriteByte(0); // filter: none
                    zlib.Write(rgb, y * width * 3, width * 3);
                }
            }
            WritePngChunk(output, "IDAT", raw.ToArray());
        }
        WritePngChunk(output, "IEND", []);
        return output.ToArray();
    }

    /// <summary>Writes one PNG chunk: length, type, data and the CRC-32 of type and data.</summary>
    public static void WritePngChunk(Stream output, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        output.Write(length);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        output.Write(typeBytes);
        output.Write(data);
        var crc = new Crc32();
        crc.Append(typeBytes);
        crc.Append(data);
        Span<byte> crcBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crcBytes, crc.GetCurrentHashAsUInt32());
        output.Write(crcBytes);
    }
}
