using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kosmos2.Gateway.Sessions;

/// <summary>A session record as UTF-8 JSON (the value stored in Redis).</summary>
internal static class SessionSerializer
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new ProtoMessageJsonConverterFactory() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static byte[] Serialize(SessionRecord record) => JsonSerializer.SerializeToUtf8Bytes(record, Options);

    /// <summary>The record, or null when the bytes are not one (a value written by something else).</summary>
    public static SessionRecord? Deserialize(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return JsonSerializer.Deserialize<SessionRecord>(utf8, Options);
        }
        catch (Exception ex) when (ex is JsonException or Google.Protobuf.InvalidProtocolBufferException or NotSupportedException)
        {
            return null;
        }
    }
}
