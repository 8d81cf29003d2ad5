using System.Text.Json;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Prompts;

/// <summary>One box given with a prompt: normalised coordinates, or a patch-index pair used as is.</summary>
public abstract record ReferringBox;

/// <summary><c>(x1, y1, x2, y2)</c> in [0, 1] of the original image; encoded with <see cref="PatchIndexCodec.Encode"/>.</summary>
public sealed record CoordinateReferringBox(NormalizedBox Box) : ReferringBox;

/// <summary>Upper-left and lower-right patch indices (0…1023) as the model writes them.</summary>
public sealed record PatchIndexReferringBox(int Ul, int Lr) : ReferringBox;

/// <summary>
/// The processor's <c>bboxes</c> argument for one prompt (KOSMOS2_SPEC.md §9): one entry per
/// <c>&lt;phrase&gt;…&lt;/phrase&gt;</c> in order; an entry is null (nothing inserted), empty, or one or more boxes.
/// </summary>
public sealed class ReferringBoxes
{
    /// <summary>Verbatim from HF <c>_check_bboxes_for_single_text</c>, so users of the reference recognise it.</summary>
    internal const string ElementMessage =
        "Each element in `bboxes` (for a single text example) should be either `None`, a tuple containing 2 integers or 4 float point numbers, or a list containing such tuples. Also make sure the arguments `texts` and `bboxes` passed to `preprocess_text` are both in batches or both for a single example.";

    public ReferringBoxes(IEnumerable<IReadOnlyList<ReferringBox>?> phrases)
    {
        ArgumentNullException.ThrowIfNull(phrases);
        Phrases = [.. phrases];
    }

    /// <summary>Per phrase: null (no box) or its boxes (possibly none).</summary>
    public IReadOnlyList<IReadOnlyList<ReferringBox>?> Phrases { get; }

    /// <summary>One box per phrase, a convenience for the common referring-expression prompt.</summary>
    public static ReferringBoxes Single(ReferringBox box) => new([[box]]);

    /// <summary>
    /// Parses the JSON form used by the golden <c>case.json</c> and the HTTP/gRPC surface: <c>null</c>, or an array
    /// whose entries are <c>null</c>, a box (<c>[x1, y1, x2, y2]</c> floats or <c>[ul, lr]</c> ints) or an array of
    /// boxes. As in Python, a number written with <c>.</c> or an exponent is a float, otherwise an int; ints where
    /// floats are expected (<c>[0, 0, 1, 1]</c>) are rejected like the reference rejects them.
    /// </summary>
    /// <returns>null for JSON <c>null</c>.</returns>
    public static ReferringBoxes? FromJson(JsonElement json)
    {
        if (json.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (json.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidPromptException("`bboxes` (for a single text example) should be `None` or a list.");
        }
        var phrases = new List<IReadOnlyList<ReferringBox>?>();
        var index = 0;
        foreach (var entry in json.EnumerateArray())
        {
            phrases.Add(ParseEntry(entry, index++));
        }
        return new ReferringBoxes(phrases);
    }

    /// <summary><see cref="FromJson(JsonElement)"/> over a JSON string.</summary>
    public static ReferringBoxes? Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var doc = JsonDocument.Parse(json);
            return FromJson(doc.RootElement);
        }
        catch (JsonException ex)
        {
            throw new InvalidPromptException($"`bboxes` is not valid JSON ({ex.Message}).", ex);
        }
    }

    private static List<ReferringBox>? ParseEntry(JsonElement entry, int index)
    {
        switch (entry.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.Array:
                var items = entry.EnumerateArray().ToList();
                if (items.Count == 0)
                {
                    return [];
                }
                if (items.TrueForAll(static e => e.ValueKind == JsonValueKind.Number))
                {
                    return [ParseBox(entry, index)];
                }
                var boxes = new List<ReferringBox>(items.Count);
                foreach (var item in items)
                {
                    if (item.ValueKind != JsonValueKind.Array)
                    {
                        throw Invalid(index, item);
                    }
                    boxes.Add(ParseBox(item, index));
                }
                return boxes;
            default:
                throw Invalid(index, entry);
        }
    }

    private static ReferringBox ParseBox(JsonElement box, int index)
    {
        var values = box.EnumerateArray().ToList();
        if (!values.TrueForAll(static v => v.ValueKind == JsonValueKind.Number))
        {
            throw Invalid(index, box);
        }
        var allInts = values.TrueForAll(static v => !IsFloat(v));
        var allFloats = values.TrueForAll(IsFloat);
        if (values.Count == 2 && allInts)
        {
            if (!values[0].TryGetInt32(out var ul) || !values[1].TryGetInt32(out var lr))
            {
                throw new InvalidPromptException(
                    $"bboxes[{index}]: patch indices {box.GetRawText()} are out of range; they must be 0…{PatchIndexCodec.PatchCount - 1}.");
            }
            return new PatchIndexReferringBox(ul, lr);
        }
        if (values.Count == 4 && allFloats)
        {
            return new CoordinateReferringBox(new NormalizedBox(
                values[0].GetDouble(), values[1].GetDouble(), values[2].GetDouble(), values[3].GetDouble()));
        }
        throw Invalid(index, box);
    }

    /// <summary>Python's <c>json</c>: a number with a fraction or an exponent is a float.</summary>
    private static bool IsFloat(JsonElement number) => number.GetRawText().AsSpan().IndexOfAny('.', 'e', 'E') >= 0;

    private static InvalidPromptException Invalid(int index, JsonElement got) =>
        new($"bboxes[{index}] = {got.GetRawText()} is not valid. {ElementMessage} " +
            "A box is [x1, y1, x2, y2] with float coordinates in [0, 1] (write 0.0, not 0) or [ul, lr] with integer patch indices.");
}
