namespace Kosmos2.DecoderWorker.Sampling;

/// <summary>Where a sequence stands in the Kosmos-2 grounding grammar.</summary>
public enum GroundingState
{
    /// <summary>Running text: anything but patch tokens, <c>&lt;/phrase&gt;</c>, <c>&lt;/object&gt;</c> and the delimiter.</summary>
    Text,

    /// <summary>Right after <c>&lt;phrase&gt;</c>: a piece (the reference's <c>[^&lt;]+</c> needs one character).</summary>
    PhraseOpen,

    /// <summary>Inside a phrase with text: a piece or <c>&lt;/phrase&gt;</c>.</summary>
    PhraseText,

    /// <summary>After <c>&lt;/phrase&gt;</c>: only <c>&lt;object&gt;</c>.</summary>
    AfterPhrase,

    /// <summary>After <c>&lt;object&gt;</c> or a delimiter: only a patch token (the top-left cell).</summary>
    ObjectOpen,

    /// <summary>After the top-left cell: only a patch token whose row and column are ≥ its own.</summary>
    FirstPatch,

    /// <summary>After a box's two cells: <c>&lt;/object&gt;</c> or the delimiter (another box).</summary>
    SecondPatch,
}

/// <summary>
/// A small state machine over the Kosmos-2 grounding grammar, one per constrained request:
/// <c>(&lt;phrase&gt; piece+ &lt;/phrase&gt;)? &lt;object&gt; box (&lt;/delimiter_of_multi_objects/&gt; box)* &lt;/object&gt;</c>
/// with <c>box = patch_ul patch_lr</c>, row and column of lr ≥ ul's, which is exactly what the reference
/// post-processing turns into an entity. <see cref="Mask"/> sets the logits of every token that would break it to
/// −∞, so greedy decoding picks the best allowed token. A budget rule closes an open phrase or object before
/// max_new_tokens runs out (each state knows how many tokens its shortest completion needs).
/// <see cref="Advance"/> is total (any token, any state), so a prompt of any content sets the starting state.
/// </summary>
public sealed class GroundingGrammar(GroundingVocabulary vocabulary)
{
    private readonly GroundingVocabulary _v = vocabulary;

    public GroundingState State { get; private set; } = GroundingState.Text;

    /// <summary>The top-left patch index of the box being written (in <see cref="GroundingState.FirstPatch"/>).</summary>
    public int TopLeft { get; private set; } = -1;

    /// <summary>
    /// Tokens the shortest well-formed completion from <paramref name="state"/> needs: an open phrase needs a piece,
    /// <c>&lt;/phrase&gt;</c>, <c>&lt;object&gt;</c>, two cells and <c>&lt;/object&gt;</c>.
    /// </summary>
    public static int ClosingCost(GroundingState state) => state switch
    {
        GroundingState.PhraseOpen => 6,
        GroundingState.PhraseText => 5,
        GroundingState.AfterPhrase => 4,
        GroundingState.ObjectOpen => 3,
        GroundingState.FirstPatch => 2,
        GroundingState.SecondPatch => 1,
        _ => 0,
    };

    /// <summary>Feeds the prompt's ids (any content: the state after its tail is what counts).</summary>
    public void Observe(ReadOnlySpan<int> ids)
    {
        foreach (var id in ids)
        {
            Advance(id);
        }
    }

    /// <summary>Moves past <paramref name="token"/>. Defined for every token: one that breaks the grammar resyncs.</summary>
    public void Advance(int token)
    {
        var (state, topLeft) = Next(token);
        State = state;
        TopLeft = topLeft;
    }

    /// <summary>
    /// Whether <paramref name="token"/> may come next with <paramref name="remaining"/> tokens left to generate
    /// (this one included). The per-id definition; <see cref="Mask"/> is its bulk form.
    /// </summary>
    public bool IsAllowed(int token, int remaining)
    {
        var patch = _v.PatchIndex(token);
        var grammatical = State switch
        {
            GroundingState.Text => patch < 0 && token != _v.PhraseEndId && token != _v.ObjectEndId && token != _v.DelimiterId,
            GroundingState.PhraseOpen => _v.IsPiece(token),
            GroundingState.PhraseText => _v.IsPiece(token) || token == _v.PhraseEndId,
            GroundingState.AfterPhrase => token == _v.ObjectStartId,
            GroundingState.ObjectOpen => patch >= 0,
            GroundingState.FirstPatch => patch >= 0 && patch / GroundingVocabulary.GridSide >= TopLeft / GroundingVocabulary.GridSide
                && patch % GroundingVocabulary.GridSide >= TopLeft % GroundingVocabulary.GridSide,
            GroundingState.SecondPatch => token == _v.ObjectEndId || token == _v.DelimiterId,
            _ => false,
        };
        return grammatical && (!BudgetApplies(remaining) || ClosingCost(Next(token).State) <= remaining - 1);
    }

    /// <summary>
    /// Sets every logit <see cref="IsAllowed"/> refuses to −∞. Cost: a few vectorised fills over at most one row
    /// (65,037 floats ≈ 10 µs), through the id ranges of the layout instead of a per-id test.
    /// </summary>
    public void Mask(Span<float> logits, int remaining)
    {
        var room = BudgetApplies(remaining) ? remaining - 1 : int.MaxValue;
        var patches = logits.Slice(_v.FirstPatchId, GroundingVocabulary.PatchCount);
        switch (State)
        {
            case GroundingState.Text:
                patches.Fill(float.NegativeInfinity);
                logits[_v.PhraseEndId] = logits[_v.ObjectEndId] = logits[_v.DelimiterId] = float.NegativeInfinity;
                if (room < ClosingCost(GroundingState.PhraseOpen))
                {
                    logits[_v.PhraseStartId] = float.NegativeInfinity;
                }
                if (room < ClosingCost(GroundingState.ObjectOpen))
                {
                    logits[_v.ObjectStartId] = float.NegativeInfinity;
                }
                break;
            case GroundingState.PhraseOpen:
            case GroundingState.PhraseText:
                if (State == GroundingState.PhraseText && room < ClosingCost(GroundingState.PhraseText))
                {
                    KeepOnly(logits, _v.PhraseEndId);
                    break;
                }
                var phraseEnd = logits[_v.PhraseEndId];
                logits[..GroundingVocabulary.FirstPieceId].Fill(float.NegativeInfinity);
                logits[_v.MaskId..].Fill(float.NegativeInfinity);
                if (State == GroundingState.PhraseText)
                {
                    logits[_v.PhraseEndId] = phraseEnd;
                }
                break;
            case GroundingState.AfterPhrase:
                KeepOnly(logits, _v.ObjectStartId);
                break;
            case GroundingState.ObjectOpen:
                logits[.._v.FirstPatchId].Fill(float.NegativeInfinity);
                logits[(_v.FirstPatchId + GroundingVocabulary.PatchCount)..].Fill(float.NegativeInfinity);
                break;
            case GroundingState.FirstPatch:
                logits[.._v.FirstPatchId].Fill(float.NegativeInfinity);
                logits[(_v.FirstPatchId + GroundingVocabulary.PatchCount)..].Fill(float.NegativeInfinity);
                MaskCornersBefore(patches, TopLeft);
                break;
            case GroundingState.SecondPatch:
                var delimiter = room >= ClosingCost(GroundingState.ObjectOpen) ? logits[_v.DelimiterId] : float.NegativeInfinity;
                KeepOnly(logits, _v.ObjectEndId);
                logits[_v.DelimiterId] = delimiter;
                break;
        }
    }

    /// <summary>The budget binds only once a well-formed ending is reachable (a prompt may leave too few tokens).</summary>
    private bool BudgetApplies(int remaining) => ClosingCost(State) <= remaining;

    private (GroundingState State, int TopLeft) Next(int token)
    {
        if (token == _v.ImageEndId)
        {
            return (GroundingState.Text, -1); // the reference keeps only the text after the last </image>
        }
        var patch = _v.PatchIndex(token);
        switch (State)
        {
            case GroundingState.PhraseOpen or GroundingState.PhraseText when _v.IsPiece(token):
                return (GroundingState.PhraseText, -1);
            case GroundingState.PhraseOpen or GroundingState.PhraseText when token == _v.PhraseEndId:
                return (GroundingState.AfterPhrase, -1);
            case GroundingState.ObjectOpen when patch >= 0:
                return (GroundingState.FirstPatch, patch);
            case GroundingState.FirstPatch when patch >= 0:
                return (GroundingState.SecondPatch, -1);
            case GroundingState.SecondPatch when token == _v.DelimiterId:
                return (GroundingState.ObjectOpen, -1);
        }
        // Text, a finished object, or a token that breaks the form: start over from what the token opens.
        if (token == _v.PhraseStartId)
        {
            return (GroundingState.PhraseOpen, -1);
        }
        return token == _v.ObjectStartId ? (GroundingState.ObjectOpen, -1) : (GroundingState.Text, -1);
    }

    private static void KeepOnly(Span<float> logits, int id)
    {
        var kept = logits[id];
        logits.Fill(float.NegativeInfinity);
        logits[id] = kept;
    }

    /// <summary>Refuses every cell above or left of <paramref name="topLeft"/>: whole rows above, then the left part of each row below.</summary>
    private static void MaskCornersBefore(Span<float> patches, int topLeft)
    {
        var row = topLeft / GroundingVocabulary.GridSide;
        var column = topLeft % GroundingVocabulary.GridSide;
        patches[..(row * GroundingVocabulary.GridSide)].Fill(float.NegativeInfinity);
        for (var r = row; r < GroundingVocabulary.GridSide; r++)
        {
            patches.Slice(r * GroundingVocabulary.GridSide, column).Fill(float.NegativeInfinity);
        }
    }
}
