namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// Splits raw text on added tokens like HF's <c>AddedVocabulary</c>: leftmost match, longest token at that
/// position; <c>lstrip</c>/<c>rstrip</c> tokens swallow the adjacent whitespace (never past the previous match).
/// Lookups are hash probes per distinct token length, only at characters that can start a token.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<string, AddedToken>.AlternateLookup<ReadOnlySpan<char>> _tokens;
    private readonly int[] _lengthsDescending;
    private readonly HashSet<char> _firstChars;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        var dictionary = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var token in tokens.Where(t => t.Content.Length > 0))
        {
            dictionary[token.Content] = token;
        }
        _tokens = dictionary.GetAlternateLookup<ReadOnlySpan<char>>();
        _lengthsDescending = [.. dictionary.Keys.Select(k => k.Length).Distinct().OrderDescending()];
        _firstChars = [.. dictionary.Keys.Select(k => k[0])];
    }

    /// <summary>Calls <paramref name="onText"/> for each non-empty text segment and <paramref name="onToken"/> for each token, in order.</summary>
    public void Split(string text, Action<string> onText, Action<AddedToken> onToken)
    {
        var span = text.AsSpan();
        var segmentStart = 0;
        var pos = 0;
        while (pos < span.Length)
        {
            if (!_firstChars.Contains(span[pos]) || !TryMatch(span, pos, out var token))
            {
                pos++;
                continue;
            }
            var segmentEnd = pos;
            if (token.LStrip)
            {
                while (segmentEnd > segmentStart && IsWhitespace(span[segmentEnd - 1]))
                {
                    segmentEnd--;
                }
            }
            if (segmentEnd > segmentStart)
            {
                onText(text[segmentStart..segmentEnd]);
            }
            onToken(token);
            pos += token.Content.Length;
            if (token.RStrip)
            {
                while (pos < span.Length && IsWhitespace(span[pos]))
                {
                    pos++;
                }
            }
            segmentStart = pos;
        }
        if (segmentStart < span.Length)
        {
            onText(text[segmentStart..]);
        }
    }

    private bool TryMatch(ReadOnlySpan<char> text, int pos, out AddedToken token)
    {
        foreach (var length in _lengthsDescending)
        {
            if (pos + length <= text.Length && _tokens.TryGetValue(text.Slice(pos, length), out var found))
            {
                token = found;
                return true;
            }
        }
        token = null!;
        return false;
    }

    /// <summary>Unicode White_Space (Rust's <c>char::is_whitespace</c>, which HF's strip uses).</summary>
    internal static bool IsWhitespace(char c) => c switch
    {
        >= '\t' and <= '\r' or ' ' or '\u0085' or '\u00A0' or '\u1680' => true,
        >= '\u2000' and <= '\u200A' or '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000' => true,
        _ => false,
    };
}
