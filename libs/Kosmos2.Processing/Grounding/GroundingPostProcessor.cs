using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Kosmos2.Processing.Grounding;

/// <summary>
/// HF <c>Kosmos2Processor.post_process_generation</c> (KOSMOS2_SPEC.md §10) over the decoded full sequence:
/// caption after the last <c>&lt;/image&gt;</c>, entities by HF's regex, tags removed with <c>&lt;.*?&gt;</c>,
/// Python <c>strip()</c>, spans in code points, boxes by <see cref="PatchIndexCodec.Decode"/>.
/// </summary>
public static partial class GroundingPostProcessor
{
    public const string EndOfImage = "</image>";

    private const string Delimiter = "</delimiter_of_multi_objects/>";

    /// <summary><c>post_process_generation(text, cleanup_and_extract=False)</c>: everything after the last <c>&lt;/image&gt;</c>.</summary>
    public static string ExtractCaption(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var i = text.LastIndexOf(EndOfImage, StringComparison.Ordinal);
        return i < 0 ? text : text[(i + EndOfImage.Length)..];
    }

    /// <summary><c>post_process_generation(text)</c>: clean text and entities.</summary>
    public static GroundingResult Process(string text, int patchesPerSide = PatchIndexCodec.PatchesPerSide) =>
        ProcessCaption(ExtractCaption(text), patchesPerSide);

    /// <summary>As <see cref="Process"/> for a caption already cut after the last <c>&lt;/image&gt;</c>.</summary>
    public static GroundingResult ProcessCaption(string caption, int patchesPerSide = PatchIndexCodec.PatchesPerSide)
    {
        ArgumentNullException.ThrowIfNull(caption);
        var processed = RemoveTags(caption);
        var lead = LeadingWhitespace(processed);
        var trail = TrailingWhitespace(processed.AsSpan(lead));
        var clean = processed.Substring(lead, processed.Length - lead - trail);
        var entities = new List<GroundedEntity>();
        foreach (var raw in ExtractRawEntities(caption, 0, caption.Length))
        {
            AddEntities(entities, raw, caption, lead, patchesPerSide);
        }
        return new GroundingResult(clean, entities);
    }

    /// <summary>Python <c>re.sub("&lt;.*?&gt;", "", s)</c>: each <c>&lt;</c> up to the first <c>&gt;</c> with no newline between.</summary>
    internal static string RemoveTags(ReadOnlySpan<char> s)
    {
        var open = s.IndexOf('<');
        if (open < 0)
        {
            return s.ToString();
        }
        var sb = new StringBuilder(s.Length);
        var i = 0;
        while (open >= 0)
        {
            var close = TagEnd(s, open);
            if (close < 0)
            {
                // Not a tag: this '<' is text; look for the next one after it.
                sb.Append(s[i..(open + 1)]);
                i = open + 1;
            }
            else
            {
                sb.Append(s[i..open]);
                i = close + 1;
            }
            var next = s[i..].IndexOf('<');
            open = next < 0 ? -1 : i + next;
        }
        sb.Append(s[i..]);
        return sb.ToString();
    }

    /// <summary>Index of the <c>&gt;</c> closing a tag opened at <paramref name="open"/>, or −1 (newline first, or none).</summary>
    internal static int TagEnd(ReadOnlySpan<char> s, int open)
    {
        var rest = s[(open + 1)..];
        var k = rest.IndexOfAny('>', '\n');
        return k >= 0 && rest[k] == '>' ? open + 1 + k : -1;
    }

    /// <summary>Python <c>str.isspace</c> for one UTF-16 unit: .NET's whitespace plus U+001C…U+001F (no astral whitespace exists).</summary>
    internal static bool IsPythonWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    internal static int LeadingWhitespace(ReadOnlySpan<char> s)
    {
        var n = 0;
        while (n < s.Length && IsPythonWhitespace(s[n]))
        {
            n++;
        }
        return n;
    }

    internal static int TrailingWhitespace(ReadOnlySpan<char> s)
    {
        var n = 0;
        while (n < s.Length && IsPythonWhitespace(s[s.Length - 1 - n]))
        {
            n++;
        }
        return n;
    }

    /// <summary>Python <c>len</c>: code points (a surrogate pair counts once, a lone surrogate once).</summary>
    internal static int CodePointLength(ReadOnlySpan<char> s)
    {
        var n = s.Length;
        for (var i = 0; i + 1 < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && char.IsLowSurrogate(s[i + 1]))
            {
                n--;
                i++;
            }
        }
        return n;
    }

    /// <summary>HF's entity regex matches in <c>caption[start..]</c> that end at or before <paramref name="end"/>, in order.</summary>
    internal static IEnumerable<RawEntity> ExtractRawEntities(string caption, int start, int end)
    {
        var m = EntityRegex().Match(caption, start);
        while (m.Success && m.Index + m.Length <= end)
        {
            yield return new RawEntity(m);
            m = m.NextMatch();
        }
    }

    /// <summary>Finishes one regex match into entities, given the leading-whitespace count of the tag-removed caption.</summary>
    internal static void AddEntities(List<GroundedEntity> into, RawEntity raw, string caption, int lead, int patchesPerSide)
    {
        var pairs = raw.PatchPairs;
        if (raw.Phrase is { } phrase)
        {
            var start = CodePointLength(RemoveTags(caption.AsSpan(0, raw.SpanStart))) - lead;
            var end = CodePointLength(RemoveTags(caption.AsSpan(0, raw.SpanEnd))) - lead;
            var phraseLead = LeadingWhitespace(phrase);
            var phraseTrail = TrailingWhitespace(phrase);
            var name = phraseLead == phrase.Length ? string.Empty : phrase[phraseLead..^phraseTrail];
            into.Add(new GroundedEntity(name, start + phraseLead, end - phraseTrail, pairs, ToBoxes(pairs, patchesPerSide)));
        }
        else
        {
            var at = CodePointLength(RemoveTags(caption.AsSpan(0, raw.SpanStart))) - lead;
            for (var i = 0; i < pairs.Count; i++)
            {
                var name = $"<patch_index_{raw.PairNames[i].Ul}><patch_index_{raw.PairNames[i].Lr}>";
                into.Add(new GroundedEntity(name, at, at, [pairs[i]], ToBoxes([pairs[i]], patchesPerSide)));
            }
        }
    }

    private static NormalizedBox[] ToBoxes(IReadOnlyList<(int Ul, int Lr)> pairs, int patchesPerSide)
    {
        var boxes = new NormalizedBox[pairs.Count];
        for (var i = 0; i < boxes.Length; i++)
        {
            boxes[i] = PatchIndexCodec.Decode(pairs[i].Ul, pairs[i].Lr, patchesPerSide);
        }
        return boxes;
    }

    [GeneratedRegex(
        @"(?:(<phrase>([^<]+)</phrase>))?<object>((?:<patch_index_\d+><patch_index_\d+></delimiter_of_multi_objects/>)*<patch_index_\d+><patch_index_\d+>)</object>",
        RegexOptions.CultureInvariant)]
    private static partial Regex EntityRegex();

    [GeneratedRegex(@"<patch_index_(\d+)>", RegexOptions.CultureInvariant)]
    private static partial Regex PatchIndexRegex();

    /// <summary>One match of HF's entity regex: phrase (null when absent) with its UTF-16 span, or the <c>&lt;object&gt;</c> start.</summary>
    internal sealed class RawEntity
    {
        public RawEntity(Match m)
        {
            Index = m.Index;
            End = m.Index + m.Length;
            if (m.Groups[1].Success)
            {
                Phrase = m.Groups[2].Value;
                SpanStart = m.Groups[2].Index;
                SpanEnd = m.Groups[2].Index + m.Groups[2].Length;
            }
            else
            {
                SpanStart = SpanEnd = m.Index;
            }
            var pairs = new List<(int, int)>();
            var names = new List<(string, string)>();
            foreach (var pair in m.Groups[3].Value.Split(Delimiter))
            {
                var indices = PatchIndexRegex().Matches(pair);
                var x = indices[0].Groups[1].Value;
                var y = indices[1].Groups[1].Value;
                pairs.Add((ParseDigits(x), ParseDigits(y)));
                names.Add((PythonIntText(x), PythonIntText(y)));
            }
            PatchPairs = pairs;
            PairNames = names;
        }

        public int Index { get; }

        public int End { get; }

        public string? Phrase { get; }

        public int SpanStart { get; }

        public int SpanEnd { get; }

        public IReadOnlyList<(int Ul, int Lr)> PatchPairs { get; }

        /// <summary><c>str(int(digits))</c>: the names of phrase-less entities use the parsed, un-padded numbers.</summary>
        public IReadOnlyList<(string Ul, string Lr)> PairNames { get; }

        /// <summary>
        /// Python <c>int()</c> of <c>\d+</c> (any Unicode decimal digits). Values beyond <see cref="int.MaxValue"/>
        /// (never produced by the tokenizer, whose patch tokens stop at 1023) saturate.
        /// </summary>
        private static int ParseDigits(string digits)
        {
            long v = 0;
            foreach (var c in digits)
            {
                v = Math.Min((v * 10) + CharUnicodeInfo.GetDecimalDigitValue(c), int.MaxValue);
            }
            return (int)v;
        }

        private static string PythonIntText(string digits)
        {
            var sb = new StringBuilder(digits.Length);
            foreach (var c in digits)
            {
                var d = CharUnicodeInfo.GetDecimalDigitValue(c);
                if (sb.Length > 0 || d != 0)
                {
                    sb.Append((char)('0' + d));
                }
            }
            return sb.Length == 0 ? "0" : sb.ToString();
        }
    }
}
