using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// Writes protobuf messages inside a System.Text.Json document in their canonical proto3 JSON form
/// (Google.Protobuf's formatter), so stored sessions can hold the public <c>Entity</c>, <c>Region</c> and
/// <c>SessionOptions</c> messages as they are and stay readable in <c>redis-cli</c>.
/// </summary>
internal sealed class ProtoMessageJsonConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeof(IMessage).IsAssignableFrom(typeToConvert);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(typeToConvert))!;

    private sealed class Converter<T> : JsonConverter<T>
        where T : IMessage<T>, new()
    {
        private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));

        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var document = JsonDocument.ParseValue(ref reader);
            return JsonParser.Default.Parse<T>(document.RootElement.GetRawText());
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
            writer.WriteRawValue(Formatter.Format(value), skipInputValidation: true);
    }
}
