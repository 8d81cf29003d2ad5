using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Prompts;

/// <summary>
/// <c>Kosmos2Processor.__call__</c> for one image and prompt (KOSMOS2_SPEC.md §8–9): strip, the <c>&lt;image&gt;</c>
/// block with 64 placeholders, boxes inserted after each <c>&lt;/phrase&gt;</c>, <c>&lt;s&gt;</c> prefix, then the
/// placeholder ids replaced by 4…67.
/// </summary>
public static partial class PromptBuilder
{
    public const int ImageTokenCount = 64;

    /// <summary>Index of the first placeholder: after <c>&lt;s&gt;</c> and <c>&lt;image&gt;</c>.</summary>
    public const int ImageOffset = 2;

    /// <summary><c>unk_id + 1</c>: placeholder i gets id <c>4 + i</c>, ordinary vocabulary ids whose embeddings are overwritten.</summary>
    public const int FirstPlaceholderId = 4;

    public const string Bos = "<s>";

    /// <summary><c>" ".join(["&lt;image&gt;"] + ["&lt;image&gt;"]*64 + ["&lt;/image&gt;"])</c>.</summary>
    public static readonly string ImageBlock = BuildImageBlock();

    /// <summary>The exact text the processor tokenises (without special tokens): <c>"&lt;s&gt;" + block + " " + prompt-with-boxes</c>.</summary>
    public static string BuildText(string prompt, ReferringBoxes? boxes) => Bos + PreprocessText(prompt, boxes, includeImage: true);

    /// <summary>
    /// HF <c>_preprocess_single_example</c>: <c>strip()</c>, the image block when there is an image, box insertion.
    /// No <c>&lt;s&gt;</c> (the golden <c>processed_text_without_image</c> form).
    /// </summary>
    public static string PreprocessText(string prompt, ReferringBoxes? boxes, bool includeImage)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var span = prompt.AsSpan();
        var lead = GroundingPostProcessor.LeadingWhitespace(span);
        var text = span[lead..];
        text = text[..(text.Length - GroundingPostProcessor.TrailingWhitespace(text))];
        var stripped = includeImage ? ImageBlock + " " + text.ToString() : text.ToString();
        return InsertBoxes(stripped, boxes);
    }

    /// <summary>
    /// HF <c>_insert_patch_index_tokens</c>: after the i-th <c>&lt;phrase&gt;.+?&lt;/phrase&gt;</c> inserts
    /// <c>"&lt;object&gt; &lt;patch_index_AAAA&gt; &lt;patch_index_BBBB&gt; &lt;/object&gt;"</c>, several boxes joined by
    /// <c>" &lt;/delimiter_of_multi_objects/&gt; "</c>.
    /// </summary>
    /// <exception cref="InvalidPromptException">
    /// the entry count differs from the phrase count, a box is not ordered (<c>x2 &gt; x1</c>, <c>y2 &gt; y1</c>), or —
    /// stricter than the reference, which would emit tokens the vocabulary does not have — coordinates fall outside
    /// [0, 1] or patch indices outside 0…1023.
    /// </exception>
    public static string InsertBoxes(string text, ReferringBoxes? boxes)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (boxes is null || boxes.Phrases.Count == 0)
        {
            return text;
        }
        var phrases = PhraseRegex().Matches(text);
        if (phrases.Count != boxes.Phrases.Count)
        {
            throw new InvalidPromptException(
                $"The number of elements in `bboxes` should be the same as the number of `<phrase> ... </phrase>` pairs in `text`. Got {phrases.Count} v.s. {boxes.Phrases.Count} instead.");
        }
        var sb = new StringBuilder(text.Length + (boxes.Phrases.Count * 64));
        var pos = 0;
        for (var i = 0; i < phrases.Count; i++)
        {
            var end = phrases[i].Index + phrases[i].Length;
            sb.Append(text, pos, end - pos);
            pos = end;
            var entry = boxes.Phrases[i];
            if (entry is null || entry.Count == 0)
            {
                continue;
            }
            sb.Append("<object> ");
            for (var j = 0; j < entry.Count; j++)
            {
                if (j > 0)
                {
                    sb.Append(" </delimiter_of_multi_objects/> ");
                }
                var (ul, lr) = ToPatchIndices(entry[j], i);
                sb.Append(PatchIndexCodec.TokenText(ul)).Append(' ').Append(PatchIndexCodec.TokenText(lr));
            }
            sb.Append(" </object>");
        }
        sb.Append(text, pos, text.Length - pos);
        return sb.ToString();
    }

    /// <summary>
    /// Builds the model input with <paramref name="encode"/> = the tokenizer's <c>Encode(text, addSpecialTokens: false)</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">the encoder did not produce the <c>&lt;s&gt; &lt;image&gt;×65 &lt;/image&gt;</c> layout.</exception>
    public static KosmosPrompt Build(string prompt, ReferringBoxes? boxes, Func<string, int[]> encode)
    {
        ArgumentNullException.ThrowIfNull(encode);
        var ids = encode(BuildText(prompt, boxes));
        if (ids.Length < ImageOffset + ImageTokenCount + 1)
        {
            throw new InvalidOperationException(
                $"The encoder returned {ids.Length} ids for a text with an image block; at least {ImageOffset + ImageTokenCount + 1} expected (encode without adding special tokens).");
        }
        var imageId = ids[1];
        for (var i = ImageOffset; i < ImageOffset + ImageTokenCount; i++)
        {
            if (ids[i] != imageId)
            {
                throw new InvalidOperationException(
                    $"The encoder split the image block unexpectedly: id {ids[i]} at index {i} where the <image> id {imageId} belongs.");
            }
            ids[i] = FirstPlaceholderId + i - ImageOffset;
        }
        var attention = new int[ids.Length];
        Array.Fill(attention, 1);
        var imageMask = new int[ids.Length];
        Array.Fill(imageMask, 1, ImageOffset, ImageTokenCount);
        return new KosmosPrompt(ids, attention, imageMask, ImageOffset);
    }

    private static (int Ul, int Lr) ToPatchIndices(ReferringBox box, int phrase)
    {
        switch (box)
        {
            case PatchIndexReferringBox p:
                if (p.Ul is < 0 or >= PatchIndexCodec.PatchCount || p.Lr is < 0 or >= PatchIndexCodec.PatchCount)
                {
                    throw new InvalidPromptException(
                        $"bboxes[{phrase}]: patch indices ({p.Ul}, {p.Lr}) are out of range; they must be 0…{PatchIndexCodec.PatchCount - 1}.");
                }
                return (p.Ul, p.Lr);
            case CoordinateReferringBox c:
                var b = c.Box;
                if (!PatchIndexCodec.IsOrdered(b))
                {
                    throw new InvalidPromptException(
                        $"The coordinates in `bbox` should be `(x1, y1, x2, y2)` with `x2 > x1` and `y2 > y1`. Got bboxes[{phrase}] = ({Format(b)}).");
                }
                if (b.X1 < 0 || b.Y1 < 0 || b.X2 > 1 || b.Y2 > 1)
                {
                    throw new InvalidPromptException(
                        $"bboxes[{phrase}] = ({Format(b)}) leaves the image; coordinates are fractions of the width and height in [0, 1].");
                }
                return PatchIndexCodec.Encode(b);
            default:
                throw new InvalidPromptException($"bboxes[{phrase}]: unsupported box {box}. {ReferringBoxes.ElementMessage}");
        }
    }

    private static string Format(NormalizedBox b) =>
        string.Join(", ", new[] { b.X1, b.Y1, b.X2, b.Y2 }.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    private static string BuildImageBlock()
    {
        var sb = new StringBuilder("<image>");
        for (var i = 0; i < ImageTokenCount; i++)
        {
            sb.Append(" <image>");
        }
        return sb.Append(" </image>").ToString();
    }

    [GeneratedRegex("<phrase>.+?</phrase>", RegexOptions.CultureInvariant)]
    private static partial Regex PhraseRegex();
}
