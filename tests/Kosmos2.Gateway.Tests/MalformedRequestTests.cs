using Google.Protobuf;
using Grpc.Core;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// A body protobuf can't parse — a string that is not UTF-8 (what a JavaScript client sends for a lone surrogate),
/// garbage bytes, a truncated message — is INVALID_ARGUMENT naming the message, on the real gateway over HTTP/2;
/// grpc-dotnet alone answers "UNKNOWN: Exception was thrown by handler".
/// </summary>
public sealed class MalformedRequestTests
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    /// <summary>The UTF-8-style encoding of the lone surrogate U+D800: not valid UTF-8.</summary>
    private static readonly byte[] LoneSurrogate = [(byte)'a', 0xED, 0xA0, 0x80, (byte)'b'];

    public static TheoryData<string, string, byte[]> Bodies() => new()
    {
        { "Generate", "GenerateRequest", StringField(2, LoneSurrogate) },                 // prompt
        { "Generate", "GenerateRequest", StringField(4, LoneSurrogate) },                 // phrases[0]
        { "Generate", "GenerateRequest", StringField(5, [0xC3, 0x28]) },                  // text: a broken 2-byte sequence
        { "Generate", "GenerateRequest", [0x12, 0x10, (byte)'a'] },                       // prompt cut short
        { "Generate", "GenerateRequest", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01] },
        { "SendTurn", "SendTurnRequest", StringField(2, LoneSurrogate) },                 // text
        { "CreateSession", "CreateSessionRequest", [0x0A, 0x05, 0x12, 0x03, 0xED, 0xA0, 0x80] }, // image.sha256
        { "Generate", "GenerateRequest", Nested(6, StringField(1, LoneSurrogate)) },      // regions[0].phrase
        { "Generate", "GenerateRequest", Nested(8, StringField(2, LoneSurrogate)) },      // stopping.stop_sequences[0]
        { "SendTurn", "SendTurnRequest", StringField(1, LoneSurrogate) },                 // session_id
        { "GetSession", "GetSessionRequest", StringField(1, LoneSurrogate) },             // session_id
        { "DeleteSession", "DeleteSessionRequest", StringField(1, [0xF4, 0x90, 0x80, 0x80]) }, // session_id: past U+10FFFF
    };

    private static readonly HashSet<string> Unary = ["CreateSession", "GetSession", "DeleteSession"];

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task A_body_protobuf_cannot_parse_is_invalid_argument_naming_the_message(string method, string message, byte[] body)
    {
        await using var gateway = await GatewayHost.StartAsync();
        var invoker = gateway.Channel.CreateCallInvoker();

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            if (Unary.Contains(method))
            {
                await invoker.AsyncUnaryCall(new Method<byte[], byte[]>(MethodType.Unary, "kosmos2.v1.Kosmos2", method, Raw, Raw), null, new CallOptions(), body);
                return;
            }
            using var call = invoker.AsyncServerStreamingCall(new Method<byte[], byte[]>(MethodType.ServerStreaming, "kosmos2.v1.Kosmos2", method, Raw, Raw), null, new CallOptions(), body);
            await call.ResponseStream.MoveNext();
        });

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith($"The request is not a valid {message}:", ex.Status.Detail);
    }

    private static byte[] Nested(int field, byte[] message) => StringField(field, message);

    private static byte[] StringField(int field, byte[] value)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer))
        {
            output.WriteTag(field, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(value));
        }
        return buffer.ToArray();
    }
}
