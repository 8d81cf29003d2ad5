using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Kosmos2.Testing;

/// <summary>Reads golden <c>.safetensors</c> files into plain arrays (F32, U8, I64), for tests that must not depend on TorchSharp.</summary>
public sealed class SafetensorsReader
{
    private readonly byte[] _bytes;
    private readonly Dictionary<string, (string DType, long[] Shape, long Start, long End)> _entries = new(StringComparer.Ordinal);
    private readonly long _dataStart;

    public SafetensorsReader(string path)
    {
        _bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(_bytes);
        _dataStart = 8 + headerLength;
        using var header = JsonDocument.Parse(_bytes.AsMemory(8, (int)headerLength));
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                continue;
            }
            var offsets = entry.Value.GetProperty("data_offsets");
            _entries[entry.Name] = (
                entry.Value.GetProperty("dtype").GetString()!,
                entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                offsets[0].GetInt64(),
                offsets[1].GetInt64());
        }
    }

    public IEnumerable<string> Names => _entries.Keys;

    public long[] Shape(string name) => _entries[name].Shape;

    public float[] Float32(string name) => Read<float>(name, "F32");

    public byte[] UInt8(string name) => Read<byte>(name, "U8");

    public long[] Int64(string name) => Read<long>(name, "I64");

    private T[] Read<T>(string name, string dtype) where T : struct
    {
        if (!_entries.TryGetValue(name, out var entry))
        {
            throw new KeyNotFoundException($"No tensor '{name}' (has: {string.Join(", ", _entries.Keys)}).");
        }
        if (entry.DType != dtype)
        {
            throw new InvalidOperationException($"Tensor '{name}' is {entry.DType}, not {dtype}.");
        }
        var span = _bytes.AsSpan((int)(_dataStart + entry.Start), (int)(entry.End - entry.Start));
        return MemoryMarshal.Cast<byte, T>(span).ToArray();
    }
}
