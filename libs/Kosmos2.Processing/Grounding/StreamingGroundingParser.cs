using System.Text;

namespace Kosmos2.Processing.Grounding;

/// <summary>Something a <see cref="StreamingGroundingParser"/> learned from one token.</summary>
public abstract record GroundingStreamEvent;

/// <summary>Clean caption text that can no longer change; append it to what was sent before.</summary>
public sealed record GroundingTextDelta(string Text) : GroundingStreamEvent;

/// <summary>A finished entity, with the same values it has in the final <see cref="GroundingResult"/>.</summary>
public sealed record GroundingEntityFound(GroundedEntity Entity) : GroundingStreamEvent;

/// <summary>
/// Everything sent so far (prompt text and entities included) is void: the model wrote another
/// <c>&lt;/image&gt;</c>, and the reference keeps only the text after the last one. Deltas and entities start again.
/// </summary>
public sealed record GroundingCaptionRestarted : GroundingStreamEvent;

/// <summary>What <see cref="StreamingGroundingParser.Complete"/> returns: the last events and the exact final result.</summary>
public sealed record GroundingStreamCompletion(IReadOnlyList<GroundingStreamEvent> Events, GroundingResult Result);

/// <summary>
/// Turns generated token ids, one at a time, into caption text deltas and entities while the model runs, such that
/// the stream adds up to <see cref="GroundingPostProcessor.Process"/> over the decode of the FULL sequence (prompt +
/// generated), which is what the reference post-processes.
/// <para>
/// Guarantee (when no <see cref="GroundingCaptionRestarted"/> was emitted):
/// <c>PromptText + concat(all GroundingTextDelta.Text) == Complete().Result.CleanText</c> and
/// <c>PromptEntities ++ all GroundingEntityFound == Complete().Result.Entities</c> (same values, same order).
/// After a restart the same holds with <c>PromptText</c> and <c>PromptEntities</c> taken as empty and only the
/// events after the last restart counted. <c>PromptText</c> is the part of the final clean text already fixed by the
/// prompt alone (e.g. <c>"It is"</c> for a referring prompt), so the deltas are exactly the clean text of the
/// generated part.
/// </para>
/// <para>
/// Text is emitted only once it cannot change: held back are an unclosed <c>&lt;</c> (it may open a tag that
/// removes everything up to its <c>&gt;</c>), a space that the decoder's <c>clean_up_tokenization_spaces</c> may still
/// delete (a trailing space, or one followed by a short tail starting with <c>. , ! ? '</c> or <c>n</c>: <c>" n't"</c>,
/// <c>" 's"</c>, <c>" ' "</c>…), a final <c>'</c> (a space before it may come back), trailing whitespace the final <c>strip()</c> could remove, leading whitespace, and a
/// trailing U+FFFD or unpaired high surrogate. An entity is emitted on the token that brings its <c>&lt;/object&gt;</c>;
/// only when no visible character precedes or forms it yet (its span depends on the caption's leading whitespace) is
/// it held until the first one arrives, or until <see cref="Complete"/>.
/// </para>
/// Each <see cref="Push"/> decodes the whole id list once (O(length)); negligible next to a decoder step.
/// </summary>
public sealed class StreamingGroundingParser
{
    /// <summary>How far back from the end a space may still be deleted by clean-up (<c>" n ' t"</c> → <c>"n't"</c>).</summary>
    private const int CleanupWindow = 5;

    private readonly Func<IReadOnlyList<int>, string> _decode;
    private readonly List<int> _ids = [];
    private readonly int _patchesPerSide;
    private readonly StringBuilder _committedClean = new();
    private readonly List<GroundingPostProcessor.RawEntity> _pendingEntities = [];
    private readonly List<GroundedEntity> _entities = [];
    private string _stableRaw = string.Empty;
    private int _entityScanPos;
    private bool _completed;

    /// <param name="decode">
    /// The tokenizer's <c>Decode(ids, skipSpecialTokens: true)</c> (with clean-up), as the reference's <c>batch_decode</c>.
    /// </param>
    /// <param name="promptIds">
    /// The prompt's ids (all of them, or any tail that starts with the <c>&lt;/image&gt;</c> token). Needed for exact
    /// results whenever prompt text follows <c>&lt;/image&gt;</c> (every Kosmos-2 prompt): the reference post-processes
    /// the decode of prompt + generated, and decoding the generated ids alone differs (the first token's <c>▁</c> is
    /// dropped, clean-up runs across the boundary). Without it the generated ids are decoded on their own.
    /// </param>
    public StreamingGroundingParser(
        Func<IReadOnlyList<int>, string> decode,
        IReadOnlyList<int>? promptIds = null,
        int patchesPerSide = PatchIndexCodec.PatchesPerSide)
    {
        ArgumentNullException.ThrowIfNull(decode);
        _decode = decode;
        _patchesPerSide = patchesPerSide;
        if (promptIds is { Count: > 0 })
        {
            _ids.AddRange(promptIds);
            var events = new List<GroundingStreamEvent>();
            Advance(events, isFinal: false);
        }
        PromptText = _committedClean.ToString();
        PromptEntities = [.. _entities];
    }

    /// <summary>The start of the final clean text already fixed by the prompt; deltas continue it.</summary>
    public string PromptText { get; }

    /// <summary>Entities already complete in the prompt (a referring box); events continue the list.</summary>
    public IReadOnlyList<GroundedEntity> PromptEntities { get; }

    /// <summary>Generated ids pushed so far.</summary>
    public int GeneratedCount { get; private set; }

    /// <summary>Feeds one generated id (special ids such as <c>&lt;/s&gt;</c> are fine: decoding skips them).</summary>
    public IReadOnlyList<GroundingStreamEvent> Push(int tokenId)
    {
        EnsureNotCompleted();
        _ids.Add(tokenId);
        GeneratedCount++;
        var events = new List<GroundingStreamEvent>(2);
        Advance(events, isFinal: false);
        return events;
    }

    /// <summary>Generation ended: flushes what was held back and returns the reference result for the full sequence.</summary>
    public GroundingStreamCompletion Complete()
    {
        EnsureNotCompleted();
        var events = new List<GroundingStreamEvent>(2);
        var caption = Advance(events, isFinal: true);
        _completed = true;
        return new GroundingStreamCompletion(events, GroundingPostProcessor.ProcessCaption(caption, _patchesPerSide));
    }

    private string Advance(List<GroundingStreamEvent> events, bool isFinal)
    {
        var caption = GroundingPostProcessor.ExtractCaption(_decode(_ids));
        if (!caption.AsSpan().StartsWith(_stableRaw, StringComparison.Ordinal))
        {
            Restart(events);
        }

        var stable = isFinal ? caption.Length : Math.Max(StableLength(caption), _stableRaw.Length);
        var tagFree = GroundingPostProcessor.RemoveTags(caption.AsSpan(0, stable));
        var lead = GroundingPostProcessor.LeadingWhitespace(tagFree);
        var leadKnown = isFinal || lead < tagFree.Length;
        var clean = leadKnown
            ? tagFree.AsSpan(lead, tagFree.Length - lead - GroundingPostProcessor.TrailingWhitespace(tagFree.AsSpan(lead)))
            : [];
        if (!clean.StartsWith(_committedClean.ToString(), StringComparison.Ordinal))
        {
            // Cannot happen if the hold-back rules are right; if it does, resend rather than send wrong text.
            Restart(events);
            clean = leadKnown
                ? tagFree.AsSpan(lead, tagFree.Length - lead - GroundingPostProcessor.TrailingWhitespace(tagFree.AsSpan(lead)))
                : [];
        }
        _stableRaw = caption[..stable];
        if (clean.Length > _committedClean.Length)
        {
            var delta = clean[_committedClean.Length..].ToString();
            _committedClean.Append(delta);
            events.Add(new GroundingTextDelta(delta));
        }

        foreach (var raw in GroundingPostProcessor.ExtractRawEntities(caption, _entityScanPos, stable))
        {
            _pendingEntities.Add(raw);
            _entityScanPos = raw.End;
        }
        if (leadKnown && _pendingEntities.Count > 0)
        {
            var before = _entities.Count;
            foreach (var raw in _pendingEntities)
            {
                GroundingPostProcessor.AddEntities(_entities, raw, caption, lead, _patchesPerSide);
            }
            _pendingEntities.Clear();
            for (var i = before; i < _entities.Count; i++)
            {
                events.Add(new GroundingEntityFound(_entities[i]));
            }
        }
        return caption;
    }

    private void EnsureNotCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("The stream was completed; create a new parser for the next generation.");
        }
    }

    private void Restart(List<GroundingStreamEvent> events)
    {
        _stableRaw = string.Empty;
        _committedClean.Clear();
        _pendingEntities.Clear();
        _entities.Clear();
        _entityScanPos = 0;
        events.Add(new GroundingCaptionRestarted());
    }

    /// <summary>Length of the caption prefix that no later token can change.</summary>
    internal static int StableLength(string caption)
    {
        var s = caption.AsSpan();
        var stable = s.Length;

        // clean_up_tokenization_spaces only ever deletes U+0020, and only when a short tail follows it.
        for (var i = Math.Max(0, s.Length - CleanupWindow); i < s.Length; i++)
        {
            if (s[i] == ' ' && CleanupMayDelete(s[(i + 1)..]))
            {
                stable = i;
                break;
            }
        }

        // " ' " → "'" may have eaten a trailing space that the next token gives to " ." / " ?" / " !" / " ," instead,
        // which brings the space before the quote back ("x ' " → "x'", then "x ' ?" → "x '?").
        if (s.Length > 0 && s[^1] == '\'')
        {
            stable = Math.Min(stable, s.Length - 1);
        }

        // Decoders emit U+FFFD for an incomplete byte sequence and may end on half a surrogate pair.
        var end = s.Length;
        while (end > 0 && s[end - 1] == '\uFFFD')
        {
            end--;
        }
        if (end > 0 && char.IsHighSurrogate(s[end - 1]))
        {
            end--;
        }
        stable = Math.Min(stable, end);

        // Tags: an unclosed '<' may become a tag that swallows everything after it (a newline first makes it plain
        // text), and a cut inside a closed tag would turn its '<' into text, so the cut moves to the tag's start.
        var open = s.IndexOf('<');
        while (open >= 0 && open < stable)
        {
            var close = GroundingPostProcessor.TagEnd(s, open);
            if (close < 0)
            {
                if (s[(open + 1)..].IndexOf('\n') < 0)
                {
                    return open;
                }
                close = open;
            }
            else if (stable <= close)
            {
                return open;
            }
            var next = s[(close + 1)..].IndexOf('<');
            open = next < 0 ? -1 : close + 1 + next;
        }
        return stable;
    }

    /// <summary>
    /// Whether a space followed by <paramref name="tail"/> (the rest of the text) may still be removed by one of
    /// <c>" ." " ?" " !" " ," " ' " " n't" " 'm" " 's" " 've" " 're"</c> once more text arrives.
    /// </summary>
    private static bool CleanupMayDelete(ReadOnlySpan<char> tail)
    {
        var first = tail.IndexOfAnyExcept(' ');
        return first < 0 || tail[first] is '.' or '?' or '!' or ',' or '\'' or 'n';
    }
}
