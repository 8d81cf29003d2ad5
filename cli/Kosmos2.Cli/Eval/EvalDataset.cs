using System.Globalization;
using System.Text.Json;

namespace Kosmos2.Cli.Eval;

/// <summary>One thing to locate: an expression (REC) or a caption's phrase (grounding), with its ground-truth boxes (corners).</summary>
internal sealed record EvalItem(string Id, string ImagePath, string Text, IReadOnlyList<double[]> Truths, string? Category);

/// <summary>
/// Reads the two ground-truth formats of <c>kosmos2 eval</c>:
/// <list type="bullet">
/// <item>RefCOCO-style JSON: an array of objects, each <c>image</c> (or <c>file_name</c>), <c>expression</c> (or
/// <c>sent</c>, or a list <c>expressions</c>/<c>sentences</c>: one item each), <c>box</c> (or <c>bbox</c>), optional
/// <c>id</c> (or <c>ref_id</c>) and <c>category</c> (or <c>category_id</c>).</item>
/// <item>Flickr30k-Entities-style JSONL: per line <c>image</c>, <c>caption</c>, <c>phrases</c>: objects with <c>span</c>
/// <c>[start, end)</c> (character offsets in the caption), <c>boxes</c> (a list), optional <c>category</c>; optional
/// <c>id</c>. A phrase without boxes is not scored (as Flickr30k Entities' non-visual phrases).</item>
/// </list>
/// Image paths are relative to <c>--images DIR</c>, else to the dataset's folder. A problem names the item and what to fix.
/// </summary>
internal static class EvalDataset
{
    public static IReadOnlyList<EvalItem> ReadRefCoco(string path, string imageRoot, BoxFormat format)
    {
        using var json = Parse(File.ReadAllText(path), path);
        var root = json.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
        {
            throw new UsageException($"{path}: a RefCOCO-style file is a JSON array of objects (image, expression, box).");
        }
        var items = new List<EvalItem>();
        var index = 0;
        foreach (var entry in root.EnumerateArray())
        {
            var where = $"{path} item {index}";
            var id = Field(entry, "id", "ref_id") ?? index.ToString(CultureInfo.InvariantCulture);
            var image = ImagePath(entry, imageRoot, where);
            var box = Box(entry.TryGetProperty("box", out var b) || entry.TryGetProperty("bbox", out b) ? b : default, format, where);
            var category = Field(entry, "category", "category_id");
            var expressions = Field(entry, "expression", "sent") is { } single ? [single] : Strings(entry, where, "expressions", "sentences");
            for (var i = 0; i < expressions.Count; i++)
            {
                items.Add(new EvalItem(expressions.Count == 1 ? id : $"{id}#{i}", image, expressions[i], [box], category));
            }
            index++;
        }
        return items;
    }

    public static IReadOnlyList<EvalItem> ReadFlickr(string path, string imageRoot, BoxFormat format)
    {
        var items = new List<EvalItem>();
        foreach (var (lineNumber, line) in JsonLines.Read(path))
        {
            var where = $"{path} line {lineNumber}";
            using var json = Parse(line, where);
            var entry = json.RootElement;
            var id = Field(entry, "id") ?? lineNumber.ToString(CultureInfo.InvariantCulture);
            var image = ImagePath(entry, imageRoot, where);
            var caption = Field(entry, "caption") ?? throw new UsageException($"{where}: \"caption\" is missing.");
            if (!entry.TryGetProperty("phrases", out var phrases) || phrases.ValueKind != JsonValueKind.Array)
            {
                throw new UsageException($"{where}: \"phrases\" is a list of {{\"span\": [start, end], \"boxes\": [[…]]}}.");
            }
            var k = 0;
            foreach (var phrase in phrases.EnumerateArray())
            {
                var at = $"{where} phrase {k}";
                var text = Span(phrase, caption, at);
                if (!phrase.TryGetProperty("boxes", out var boxes) || boxes.ValueKind != JsonValueKind.Array)
                {
                    throw new UsageException($"{at}: \"boxes\" is a list of boxes (may be empty).");
                }
                var truths = boxes.EnumerateArray().Select(b => Box(b, format, at)).ToList();
                if (truths.Count > 0)
                {
                    items.Add(new EvalItem($"{id}#{k}", image, text, truths, Field(phrase, "category")));
                }
                k++;
            }
        }
        return items;
    }

    private static JsonDocument Parse(string text, string where)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"{where}: not valid JSON ({ex.Message}).");
        }
    }

    /// <summary>A string (or a number, as category ids are) from the first of <paramref name="names"/> present.</summary>
    private static string? Field(JsonElement entry, params string[] names)
    {
        foreach (var name in names)
        {
            if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty(name, out var value))
            {
                return value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString(),
                    JsonValueKind.Number => value.GetRawText(),
                    _ => null,
                };
            }
        }
        return null;
    }

    private static List<string> Strings(JsonElement entry, string where, params string[] names)
    {
        foreach (var name in names)
        {
            if (entry.TryGetProperty(name, out var list) && list.ValueKind == JsonValueKind.Array)
            {
                // RefCOCO's own sentences are objects with "sent"; plain strings are accepted too.
                var texts = list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : Field(e, "sent")).ToList();
                if (texts.Count > 0 && texts.All(t => !string.IsNullOrWhiteSpace(t)))
                {
                    return texts!;
                }
            }
        }
        throw new UsageException($"{where}: \"expression\" (or \"sent\", or a list \"expressions\"/\"sentences\") is missing or blank.");
    }

    private static string ImagePath(JsonElement entry, string imageRoot, string where)
    {
        var image = Field(entry, "image", "file_name") ?? throw new UsageException($"{where}: \"image\" (or \"file_name\") is missing.");
        var path = Path.GetFullPath(image, imageRoot);
        return File.Exists(path) ? path : throw new UsageException($"{where}: the image {path} does not exist (is --images right?).");
    }

    private static double[] Box(JsonElement value, BoxFormat format, string where)
    {
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
        {
            throw new UsageException($"{where}: a box is a list of 4 numbers ({(format == BoxFormat.Xywh ? "x, y, width, height" : "x1, y1, x2, y2")}).");
        }
        return BoxMath.ToCorners(value.EnumerateArray().Select(v => v.GetDouble()).ToList(), format, out var problem)
               ?? throw new UsageException($"{where}: {problem}.");
    }

    /// <summary>The caption's text at the phrase's <c>span</c>; a <c>phrase</c> given beside it must match.</summary>
    private static string Span(JsonElement phrase, string caption, string where)
    {
        if (!phrase.TryGetProperty("span", out var span) || span.ValueKind != JsonValueKind.Array || span.GetArrayLength() != 2
            || !span[0].TryGetInt32(out var start) || !span[1].TryGetInt32(out var end) || start < 0 || end > caption.Length || start >= end)
        {
            throw new UsageException($"{where}: \"span\" is [start, end), character offsets within the caption ({caption.Length} characters).");
        }
        var text = caption[start..end];
        if (Field(phrase, "phrase") is { } given && given != text)
        {
            throw new UsageException($"{where}: \"phrase\" is '{given}' but the caption's span [{start}, {end}) is '{text}'.");
        }
        return text;
    }
}
