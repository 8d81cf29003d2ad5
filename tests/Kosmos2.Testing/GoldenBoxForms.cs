using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Testing;

/// <summary>
/// The other ways of writing a golden case's <c>bboxes</c> that the reference processor turns into the same prompt
/// (KOSMOS2_SPEC.md §9), so a case's expected outputs hold for each of them: no boxes given for a prompt with phrases =
/// <c>null</c> for every phrase; a 4-float box = its <c>[ul, lr]</c> patch-index pair; a single box = a list of one box.
/// Derived from whatever the case holds, so every golden family is sent through every box form.
/// </summary>
public static partial class GoldenBoxForms
{
    /// <summary>(form name, bboxes JSON) for each equivalent form that differs from <paramref name="bboxesJson"/>.</summary>
    public static IReadOnlyList<(string Form, string BboxesJson)> Equivalents(string prompt, string? bboxesJson)
    {
        using var doc = JsonDocument.Parse(bboxesJson ?? "null");
        var root = doc.RootElement;
        var forms = new List<(string, string)>();
        if (root.ValueKind != JsonValueKind.Array)
        {
            var phrases = PhrasePair().Count(prompt);
            if (phrases > 0)
            {
                forms.Add(("null-per-phrase", "[" + string.Join(", ", Enumerable.Repeat("null", phrases)) + "]"));
            }
            return forms;
        }

        var entries = root.EnumerateArray().ToList();
        if (entries.Any(e => Boxes(e).Any(IsCoordinateBox)))
        {
            forms.Add(("patch-index", Join(entries.Select(e => Rewrite(e, box => IsCoordinateBox(box) ? PatchPair(box) : box.GetRawText())))));
        }
        if (entries.Any(IsSingleBox))
        {
            forms.Add(("box-list", Join(entries.Select(e => IsSingleBox(e) ? "[" + e.GetRawText() + "]" : e.GetRawText()))));
        }
        return forms;
    }

    private static string Join(IEnumerable<string> entries) => "[" + string.Join(", ", entries) + "]";

    /// <summary>An entry is null, one box (an array of numbers) or a list of boxes.</summary>
    private static bool IsSingleBox(JsonElement entry) =>
        entry.ValueKind == JsonValueKind.Array && entry.GetArrayLength() > 0 && entry.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number);

    private static List<JsonElement> Boxes(JsonElement entry) =>
        entry.ValueKind != JsonValueKind.Array ? [] : IsSingleBox(entry) ? [entry] : [.. entry.EnumerateArray()];

    private static string Rewrite(JsonElement entry, Func<JsonElement, string> box) =>
        entry.ValueKind != JsonValueKind.Array ? entry.GetRawText()
        : IsSingleBox(entry) ? box(entry)
        : Join(entry.EnumerateArray().Select(box));

    private static bool IsCoordinateBox(JsonElement box) => box.GetArrayLength() == 4;

    private static string PatchPair(JsonElement box)
    {
        var v = box.EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var (ul, lr) = PatchIndexCodec.Encode(new NormalizedBox(v[0], v[1], v[2], v[3]));
        return string.Create(CultureInfo.InvariantCulture, $"[{ul}, {lr}]");
    }

    /// <summary>The processor's phrase pattern, <c>&lt;phrase&gt;.+?&lt;/phrase&gt;</c>.</summary>
    [GeneratedRegex("<phrase>.+?</phrase>")]
    private static partial Regex PhrasePair();
}
