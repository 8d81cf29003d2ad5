using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// Streams decoded text while tokens are generated; the pieces returned by <see cref="Push"/> and
/// <see cref="Flush"/> concatenate to <see cref="Kosmos2Tokenizer.Decode"/> of all pushed ids.
/// Clean-up rules only delete spaces next to <c>.?!,'</c> and the letters of <c>n't 'm 's 've 're</c>, so text up to
/// the last character outside that set can never change again: it is released, the tail is held back.
/// Not thread-safe (one per stream).
/// </summary>
public sealed class Kosmos2IncrementalDecoder
{
    private const string CleanUpChars = " .?!,'ntmsver";

    private readonly Kosmos2Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly bool _cleanUp;
    private readonly StringBuilder _pending = new();
    private bool _first = true;

    internal Kosmos2IncrementalDecoder(Kosmos2Tokenizer tokenizer, bool skipSpecialTokens, bool cleanUpTokenizationSpaces)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
        _cleanUp = cleanUpTokenizationSpaces;
    }

    /// <summary>Adds one id; returns the text that became final (often empty while a word may still be cleaned up).</summary>
    public string Push(int id)
    {
        _tokenizer.AppendDecoded(_pending, id, _skipSpecialTokens, ref _first);
        if (!_cleanUp)
        {
            return Take(_pending.Length);
        }
        for (var i = _pending.Length - 1; i >= 0; i--)
        {
            if (!CleanUpChars.Contains(_pending[i], StringComparison.Ordinal))
            {
                return Take(i + 1);
            }
        }
        return string.Empty;
    }

    /// <summary>Releases the held-back tail (end of the sequence).</summary>
    public string Flush() => Take(_pending.Length);

    private string Take(int length)
    {
        if (length == 0)
        {
            return string.Empty;
        }
        var chunk = new StringBuilder(_pending.ToString(0, length));
        _pending.Remove(0, length);
        if (_cleanUp)
        {
            Kosmos2Tokenizer.CleanUp(chunk);
        }
        return chunk.ToString();
    }
}
