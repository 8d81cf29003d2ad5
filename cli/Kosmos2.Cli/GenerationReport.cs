using System.Text;
using System.Text.Json;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli;

/// <summary>
/// One entity as printed: phrase, code-point span, normalised boxes (and pixel boxes when the image size is known),
/// and with <c>--logprobs</c> each box's confidence (mean log-probability of its patch tokens; null = from the prompt).
/// </summary>
internal sealed record ReportEntity(
    string Phrase, int SpanStart, int SpanEnd, IReadOnlyList<double[]> Boxes, IReadOnlyList<double[]>? PixelBoxes, IReadOnlyList<float?>? BoxLogprobs = null);

/// <summary>
/// The result of a generation in the one shape both `generate` modes print, offline or through a gateway, so a
/// script can switch between them: <c>input_ids</c>, <c>new_token_ids</c>, <c>decoded_text</c>, <c>clean_text</c>,
/// <c>entities</c> (<c>phrase</c>, <c>span</c>, <c>boxes</c> normalised), <c>timings_ms</c>; with <c>--logprobs</c> also
/// <c>token_logprobs</c> (<c>id</c>, <c>token</c>, <c>logprob</c>, <c>top</c>) and each entity's <c>box_logprobs</c>.
/// </summary>
internal sealed record GenerationReport(
    IReadOnlyList<int> InputIds,
    IReadOnlyList<int> NewTokenIds,
    string DecodedText,
    string CleanText,
    IReadOnlyList<ReportEntity> Entities,
    IReadOnlyDictionary<string, object> Timings,
    IReadOnlyList<TokenLogprob>? TokenLogprobs = null)
{
    /// <summary>
    /// Token counts the gateway reported (<c>prompt_tokens</c>, <c>generated_tokens</c>, <c>cached_prompt_tokens</c>: the
    /// prompt tokens a decoder reused from its prefix cache); null offline, where nothing is cached.
    /// </summary>
    public IReadOnlyDictionary<string, object>? Usage { get; init; }

    /// <summary>How every kosmos2 JSON output is written (text as it is, not \u-escaped).</summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The object; <paramref name="head"/> writes fields before the report's own (a batch line's id and status).</summary>
    public string ToJson(Action<Utf8JsonWriter>? head = null)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            head?.Invoke(json);
            WriteInts(json, "input_ids", InputIds);
            WriteInts(json, "new_token_ids", NewTokenIds);
            json.WriteString("decoded_text", DecodedText);
            json.WriteString("clean_text", CleanText);
            json.WriteStartArray("entities");
            foreach (var entity in Entities)
            {
                json.WriteStartObject();
                json.WriteString("phrase", entity.Phrase);
                json.WriteStartArray("span");
                json.WriteNumberValue(entity.SpanStart);
                json.WriteNumberValue(entity.SpanEnd);
                json.WriteEndArray();
                WriteBoxes(json, "boxes", entity.Boxes);
                if (entity.PixelBoxes is not null)
                {
                    WriteBoxes(json, "boxes_px", entity.PixelBoxes);
                }
                if (entity.BoxLogprobs is not null)
                {
                    json.WriteStartArray("box_logprobs");
                    foreach (var logprob in entity.BoxLogprobs)
                    {
                        WriteNumberOrNull(json, logprob);
                    }
                    json.WriteEndArray();
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
            if (TokenLogprobs is not null)
            {
                WriteTokenLogprobs(json, TokenLogprobs);
            }
            if (Usage is not null)
            {
                json.WriteStartObject("usage");
                foreach (var (name, value) in Usage)
                {
                    json.WriteNumber(name, Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                }
                json.WriteEndObject();
            }
            json.WriteStartObject("timings_ms");
            foreach (var (name, value) in Timings)
            {
                switch (value)
                {
                    case bool flag:
                        json.WriteBoolean(name, flag);
                        break;
                    case double number:
                        json.WriteNumber(name, Math.Round(number, 3));
                        break;
                    default:
                        json.WriteString(name, value.ToString());
                        break;
                }
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The entities, readably: one line each with boxes.</summary>
    public string EntitiesText()
    {
        var text = new StringBuilder();
        foreach (var entity in Entities)
        {
            text.Append("  ").Append(entity.Phrase).Append(" [").Append(entity.SpanStart).Append(", ").Append(entity.SpanEnd).Append(")\n");
            for (var i = 0; i < entity.Boxes.Count; i++)
            {
                var b = entity.Boxes[i];
                text.Append($"    box ({b[0]:0.###}, {b[1]:0.###}, {b[2]:0.###}, {b[3]:0.###})");
                if (entity.PixelBoxes is { } pixels)
                {
                    var p = pixels[i];
                    text.Append($"  pixels ({p[0]:0}, {p[1]:0}, {p[2]:0}, {p[3]:0})");
                }
                if (entity.BoxLogprobs is { } logprobs && logprobs[i] is { } logprob)
                {
                    text.Append($"  logprob {logprob:0.###}");
                }
                text.Append('\n');
            }
        }
        return text.ToString();
    }

    private static void WriteTokenLogprobs(Utf8JsonWriter json, IReadOnlyList<TokenLogprob> tokens)
    {
        json.WriteStartArray("token_logprobs");
        foreach (var token in tokens)
        {
            json.WriteStartObject();
            json.WriteNumber("id", token.TokenId);
            json.WriteString("token", token.Token);
            WriteNumberOrNull(json, token.Logprob, "logprob");
            json.WriteStartArray("top");
            foreach (var top in token.Top)
            {
                json.WriteStartObject();
                json.WriteNumber("id", top.TokenId);
                json.WriteString("token", top.Token);
                WriteNumberOrNull(json, top.Logprob, "logprob");
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    /// <summary>JSON has no NaN or infinity: those (a token the decoder sent no value for) are written as null.</summary>
    private static void WriteNumberOrNull(Utf8JsonWriter json, float? value, string? name = null)
    {
        if (name is not null)
        {
            json.WritePropertyName(name);
        }
        if (value is { } v && float.IsFinite(v))
        {
            json.WriteNumberValue(Math.Round(v, 6));
        }
        else
        {
            json.WriteNullValue();
        }
    }

    private static void WriteInts(Utf8JsonWriter json, string name, IReadOnlyList<int> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteNumberValue(value);
        }
        json.WriteEndArray();
    }

    private static void WriteBoxes(Utf8JsonWriter json, string name, IReadOnlyList<double[]> boxes)
    {
        json.WriteStartArray(name);
        foreach (var box in boxes)
        {
            json.WriteStartArray();
            foreach (var v in box)
            {
                json.WriteNumberValue(v);
            }
            json.WriteEndArray();
        }
        json.WriteEndArray();
    }
}
