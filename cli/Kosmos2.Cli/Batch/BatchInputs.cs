using System.Globalization;
using System.Text.Json;

namespace Kosmos2.Cli.Batch;

/// <summary>The task-wide fields from the command line: the task and fields of every folder image and manifest default.</summary>
internal sealed record BatchDefaults(string Task, IReadOnlyList<string> Phrases, string? Text, IReadOnlyList<string> Boxes, string? Prompt);

/// <summary>
/// Reads a batch's inputs: a folder of images (every image below it, in path order, id = path relative to the folder)
/// or a JSONL manifest (one object per line: <c>image</c>, optional <c>id</c>, <c>task</c>, <c>phrases</c>, <c>text</c>,
/// <c>boxes</c>, <c>prompt</c>; image paths relative to the manifest's folder; id defaults to the line number).
/// Every item is checked before anything is sent: a bad line stops the run with its line number and what to fix.
/// </summary>
internal static class BatchInputs
{
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp" };

    private static readonly string[] ManifestFields = ["id", "image", "task", "phrases", "text", "boxes", "prompt"];

    public static IReadOnlyList<BatchItem> Read(string input, BatchDefaults defaults)
    {
        List<BatchItem> items;
        if (Directory.Exists(input))
        {
            items = Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f)))
                .Order(StringComparer.Ordinal)
                .Select(f => new BatchItem(Path.GetRelativePath(input, f), f, defaults.Task, defaults.Phrases, defaults.Text, defaults.Boxes, defaults.Prompt))
                .ToList();
            if (items.Count == 0)
            {
                throw new UsageException($"{input} holds no images ({string.Join(", ", ImageExtensions)}).");
            }
            foreach (var item in items)
            {
                Check(item, $"{input}: {item.Id}");
            }
            return items;
        }
        if (!File.Exists(input))
        {
            throw new UsageException($"{input} is neither a folder of images nor a JSONL manifest.");
        }
        items = ReadManifest(input, defaults);
        if (items.Count == 0)
        {
            throw new UsageException($"{input} has no items: one JSON object per line, e.g. {{\"image\": \"a.png\", \"task\": \"caption\"}}.");
        }
        var duplicate = items.GroupBy(i => i.Id, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new UsageException($"{input}: the id '{duplicate.Key}' is used more than once; ids must be unique (a rerun skips by id).");
        }
        return items;
    }

    private static List<BatchItem> ReadManifest(string path, BatchDefaults defaults)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var items = new List<BatchItem>();
        foreach (var (lineNumber, line) in JsonLines.Read(path))
        {
            var where = $"{path} line {lineNumber}";
            try
            {
                using var json = JsonDocument.Parse(line);
                var root = json.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    throw new UsageException($"{where}: each line is a JSON object.");
                }
                var unknown = root.EnumerateObject().Select(p => p.Name).FirstOrDefault(n => !ManifestFields.Contains(n));
                if (unknown is not null)
                {
                    throw new UsageException($"{where}: unknown field \"{unknown}\" (fields: {string.Join(", ", ManifestFields)}).");
                }
                var image = String(root, "image") ?? throw new UsageException($"{where}: \"image\" (the image file) is missing.");
                var imagePath = Path.GetFullPath(image, folder);
                if (!File.Exists(imagePath))
                {
                    throw new UsageException($"{where}: the image {imagePath} does not exist.");
                }
                var phrases = root.TryGetProperty("phrases", out var p) ? Strings(p, where) : defaults.Phrases;
                var boxes = root.TryGetProperty("boxes", out var b) ? Boxes(b, where) : defaults.Boxes;
                var item = new BatchItem(
                    String(root, "id") ?? lineNumber.ToString(CultureInfo.InvariantCulture),
                    imagePath,
                    String(root, "task") ?? defaults.Task,
                    phrases,
                    String(root, "text") ?? defaults.Text,
                    boxes,
                    String(root, "prompt") ?? defaults.Prompt);
                Check(item, where);
                items.Add(item);
            }
            catch (JsonException ex)
            {
                throw new UsageException($"{where}: not valid JSON ({ex.Message}).");
            }
            catch (InvalidOperationException ex)
            {
                throw new UsageException($"{where}: {ex.Message}");
            }
        }
        return items;
    }

    /// <summary>Fails with <paramref name="where"/> when the item cannot be sent (missing field, malformed box).</summary>
    private static void Check(BatchItem item, string where)
    {
        if (item.Problem() is { } problem)
        {
            throw new UsageException($"{where}: {problem}.");
        }
        try
        {
            item.ToRequest();
        }
        catch (UsageException ex)
        {
            throw new UsageException($"{where}: {ex.Message}");
        }
    }

    /// <summary>A string field; an id may also be a number.</summary>
    private static string? String(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.Number && name == "id" ? value.GetRawText()
        : value.GetString();

    private static string[] Strings(JsonElement array, string where) =>
        array.ValueKind == JsonValueKind.Array && array.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
            ? array.EnumerateArray().Select(e => e.GetString()!).ToArray()
            : throw new UsageException($"{where}: \"phrases\" is a list of strings.");

    /// <summary><c>[[x1, y1, x2, y2], …]</c> as the <c>x1,y1,x2,y2</c> strings the refer command parses.</summary>
    private static string[] Boxes(JsonElement array, string where)
    {
        if (array.ValueKind != JsonValueKind.Array
            || !array.EnumerateArray().All(b => b.ValueKind == JsonValueKind.Array && b.GetArrayLength() == 4 && b.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number)))
        {
            throw new UsageException($"{where}: \"boxes\" is a list of [x1, y1, x2, y2] number lists.");
        }
        return array.EnumerateArray()
            .Select(b => string.Join(',', b.EnumerateArray().Select(v => v.GetDouble().ToString("R", CultureInfo.InvariantCulture))))
            .ToArray();
    }
}
