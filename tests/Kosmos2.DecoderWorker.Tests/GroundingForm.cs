using System.Globalization;
using System.Text.RegularExpressions;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>
/// An independent judge of well-formed grounding, on decoded text (not on the decoder's state machine): every
/// object is the reference post-processor's pattern with ordered corners, and no grounding tag or patch token is
/// left outside one. Judges the caption as the reference post-processes it (after the last <c>&lt;/image&gt;</c>).
/// </summary>
public static partial class GroundingForm
{
    private const int Side = PatchIndexCodec.PatchesPerSide;

    private static readonly string[] Tags = ["<phrase>", "</phrase>", "<object>", "</object>", "</delimiter_of_multi_objects/>", "<patch_index_"];

    /// <summary>What is wrong with the grounding of prompt + generated ids; empty when well-formed.</summary>
    public static List<string> Problems(Kosmos2Tokenizer tokenizer, IEnumerable<int> promptIds, IEnumerable<int> generatedIds)
    {
        var text = tokenizer.Decode([.. promptIds, .. generatedIds]);
        var imageEnd = text.LastIndexOf("</image>", StringComparison.Ordinal);
        return Problems(imageEnd >= 0 ? text[(imageEnd + "</image>".Length)..] : text);
    }

    public static List<string> Problems(string caption)
    {
        var problems = new List<string>();
        var rest = EntityPattern().Replace(caption, match =>
        {
            var cells = PatchPattern().Matches(match.Value).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
            for (var i = 0; i + 1 < cells.Count; i += 2)
            {
                if (cells[i + 1] / Side < cells[i] / Side || cells[i + 1] % Side < cells[i] % Side)
                {
                    problems.Add($"box <{cells[i]}, {cells[i + 1]}> has its bottom-right cell above or left of its top-left");
                }
            }
            return " ";
        });
        foreach (var tag in Tags.Where(t => rest.Contains(t, StringComparison.Ordinal)))
        {
            problems.Add($"'{tag}' outside a well-formed entity in: {caption}");
        }
        return problems;
    }

    [GeneratedRegex(@"(?:<phrase>[^<]+</phrase>)?<object>(?:<patch_index_\d{4}><patch_index_\d{4}></delimiter_of_multi_objects/>)*<patch_index_\d{4}><patch_index_\d{4}></object>")]
    private static partial Regex EntityPattern();

    [GeneratedRegex(@"<patch_index_(\d{4})>")]
    private static partial Regex PatchPattern();
}
