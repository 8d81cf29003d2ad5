using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Kosmos2.Processing.Tests;

/// <summary>
/// A minimal safetensors reader for golden files (8-byte little-endian header length, JSON header with
/// dtype/shape/data_offsets, raw little-endian data). Test-only: the processing library has no tensor dependency.
/// </summary>
public sealed class SafetensorsFile
{
    private readonly byte[] _data;
    private readonly long _dataStart;
    private readonly Dictionary<string, (string Dtype, long[] Shape, long Begin, long End)> _entries = new(StringComparer.Ordinal);

    private SafetensorsFile(byte[] data)
    {
        _data = data;
        var headerLength = checked((long)BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(0, 8)));
        _dataStart = 8 + headerLength;
        using var header = JsonDocument.Parse(data.AsMemory(8, (int)headerLength));
        foreach (var p in header.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                continue;
            }
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            _entries[p.Name] = (p.Value.GetProperty("dtype").GetString()!, shape, offsets[0], offsets[1]);
        }
    }

    public IReadOnlyCollection<string> Names => _entries.Keys;

    public static SafetensorsFile Open(string path) => new(File.ReadAllBytes(path));

    public long[] Shape(string name) => _entries[name].Shape;

    public float[] ReadF32(string name) => Read<float>(name, "F32");

    public byte[] ReadU8(string name) => Read<byte>(name, "U8");

    public long[] ReadI64(string name) => Read<long>(name, "I64");

    private T[] Read<T>(string name, string dtype)
        where T : unmanaged
    {
        if (!_entries.TryGetValue(name, out var e))
        {
            throw new KeyNotFoundException($"no tensor '{name}'; present: {string.Join(", ", _entries.Keys)}");
        }
        if (e.Dtype != dtype)
        {
            throw new InvalidDataException($"tensor '{name}' is {e.Dtype}, not {dtype}");
        }
        var bytes = _data.AsSpan((int)(_dataStart + e.Begin), (int)(e.End - e.Begin));
        // Golden files and this machine are little-endian.
        return MemoryMarshal.Cast<byte, T>(bytes).ToArray();
    }
}
