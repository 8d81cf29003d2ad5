using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Loading;

/// <summary>One tensor's header entry: dtype string, shape and byte range relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// Minimal reader (and writer, <see cref="Write"/>) of the safetensors format (8-byte little-endian header length, JSON header, raw little-endian data).
/// Reads one tensor at a time so a 6.66 GB float32 checkpoint converts to bfloat16 with one tensor of extra memory.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
    private readonly long _dataStart;
    private byte[] _buffer = [];

    private SafetensorsFile(string path, Microsoft.Win32.SafeHandles.SafeFileHandle handle, long dataStart, Dictionary<string, SafetensorsEntry> entries)
    {
        Path = path;
        _handle = handle;
        _dataStart = dataStart;
        Entries = entries;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    public static SafetensorsFile Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            ReadExactly(handle, lengthBytes, 0);
            var headerLength = BitConverter.ToInt64(lengthBytes);
            if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > RandomAccess.GetLength(handle))
            {
                throw new InvalidDataException($"{path} is not a safetensors file (header length {headerLength}).");
            }
            var header = new byte[headerLength];
            ReadExactly(handle, header, 8);
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            using (var doc = JsonDocument.Parse(header))
            {
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    if (property.Name == "__metadata__")
                    {
                        continue;
                    }
                    var value = property.Value;
                    var offsets = value.GetProperty("data_offsets");
                    entries[property.Name] = new SafetensorsEntry(
                        property.Name,
                        value.GetProperty("dtype").GetString() ?? "",
                        value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                        offsets[0].GetInt64(),
                        offsets[1].GetInt64());
                }
            }
            return new SafetensorsFile(path, handle, 8 + headerLength, entries);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The torch dtype of a safetensors dtype string.</summary>
    public static ScalarType ToScalarType(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32,
        "BF16" => ScalarType.BFloat16,
        "F16" => ScalarType.Float16,
        "F64" => ScalarType.Float64,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new NotSupportedException($"safetensors dtype {dtype} is not supported."),
    };

    /// <summary>The safetensors dtype string of a torch dtype (the inverse of <see cref="ToScalarType"/>).</summary>
    public static string ToDType(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float16 => "F16",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"torch dtype {type} has no safetensors dtype here."),
    };

    /// <summary>
    /// Writes <paramref name="tensors"/> (name → tensor, in the given order, each in its own dtype) as one safetensors
    /// file: 8-byte little-endian header length, JSON header padded with spaces to a multiple of 8, raw data.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var data = tensors.Select(p => (Name: p.Key, DType: ToDType(p.Value.dtype), Shape: p.Value.shape, Bytes: p.Value.cpu().contiguous().bytes.ToArray())).ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, dtype, shape, bytes) in data)
        {
            header[name] = new { dtype, shape, data_offsets = new[] { offset, offset + bytes.Length } };
            offset += bytes.Length;
        }
        var headerBytes = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (headerBytes.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)padded));
        file.Write(headerBytes);
        for (var i = headerBytes.Length; i < padded; i++)
        {
            file.WriteByte((byte)' ');
        }
        foreach (var (_, _, _, bytes) in data)
        {
            file.Write(bytes);
        }
    }

    /// <summary>
    /// Reads <paramref name="name"/> as a new tensor (in the caller's dispose scope), converted to
    /// <paramref name="dtype"/> and moved to <paramref name="device"/> when given.
    /// </summary>
    public Tensor Read(string name, ScalarType? dtype = null, Device? device = null)
    {
        if (!Entries.TryGetValue(name, out var entry))
        {
            throw new KeyNotFoundException($"{Path} has no tensor '{name}'.");
        }
        var fileType = ToScalarType(entry.DType);
        if (entry.ByteLength > int.MaxValue)
        {
            throw new NotSupportedException($"Tensor {name} is larger than 2 GB.");
        }
        var length = (int)entry.ByteLength;
        if (_buffer.Length < length)
        {
            _buffer = new byte[length];
        }
        ReadExactly(_handle, _buffer.AsSpan(0, length), _dataStart + entry.Begin);
        using var scope = NewDisposeScope();
        var tensor = torch.empty(entry.Shape, fileType);
        if (tensor.NumberOfElements * tensor.ElementSize != length)
        {
            throw new InvalidDataException($"{name}: {length} bytes stored for shape [{string.Join(", ", entry.Shape)}] {entry.DType}.");
        }
        if (length > 0)
        {
            tensor.bytes = _buffer.AsSpan(0, length);
        }
        if (dtype is { } target && target != fileType)
        {
            tensor = tensor.to(target);
        }
        if (device is not null && device.type != DeviceType.CPU)
        {
            tensor = tensor.to(device);
        }
        return tensor.MoveToOuterDisposeScope();
    }

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> destination, long offset)
    {
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(handle, destination, offset);
            if (read <= 0)
            {
                throw new EndOfStreamException("safetensors file ends inside a tensor.");
            }
            destination = destination[read..];
            offset += read;
        }
    }

    /// <summary>Drops the read buffer (large after the embedding matrix) and closes the file.</summary>
    public void Dispose()
    {
        _buffer = [];
        _handle.Dispose();
    }
}
