namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// sentencepiece's BPE segmentation (<c>bpe_model.cc</c>): start from code points (user-defined pieces frozen whole),
/// repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece (ties: leftmost), then
/// re-split unused pieces into the pair that formed them. Symbols that are not pieces become <c>&lt;unk&gt;</c>.
/// </summary>
internal sealed class BpeEncoder : ISentencePieceEncoder
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _pieces;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved;
    private readonly float[] _scores;
    private readonly bool[] _unused;
    private readonly string[] _userDefined;
    private readonly int _unkId;

    public BpeEncoder(IReadOnlyList<SentencePiece> pieces, int unkId)
    {
        _unkId = unkId;
        var normal = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        var userDefined = new List<string>();
        _scores = new float[pieces.Count];
        _unused = new bool[pieces.Count];
        for (var i = 0; i < pieces.Count; i++)
        {
            var p = pieces[i];
            _scores[i] = p.Score;
            _unused[i] = p.Type == SentencePieceType.Unused;
            if (p.Type is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused)
            {
                normal.TryAdd(p.Piece, i);
                if (p.Type == SentencePieceType.UserDefined && p.Piece.Length > 0)
                {
                    userDefined.Add(p.Piece);
                }
            }
            else
            {
                reserved.TryAdd(p.Piece, i);
            }
        }
        _pieces = normal.GetAlternateLookup<ReadOnlySpan<char>>();
        _reserved = reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = [.. userDefined.OrderByDescending(s => s.Length)];
    }

    public void Encode(string normalized, List<PieceSpan> output)
    {
        if (normalized.Length == 0)
        {
            return;
        }
        var text = normalized.AsSpan();

        // Symbols as a doubly linked list over the text: [start[i], start[i] + length[i]); length 0 = merged away.
        var count = 0;
        var starts = new int[text.Length];
        var lengths = new int[text.Length];
        var frozen = new bool[text.Length];
        for (var pos = 0; pos < text.Length; count++)
        {
            var (length, freeze) = PrefixMatch(text[pos..]);
            starts[count] = pos;
            lengths[count] = length;
            frozen[count] = freeze;
            pos += length;
        }
        var prev = new int[count];
        var next = new int[count];
        for (var i = 0; i < count; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }

        // Priority (-score, left): highest score first, ties to the leftmost pair, like SymbolPairComparator.
        var agenda = new PriorityQueue<(int Left, int Right, int Size), (float NegScore, int Left)>(count);
        Dictionary<string, (int LeftStart, int LeftLength, int RightStart, int RightLength)>? revMerge = null;
        for (var i = 1; i < count; i++)
        {
            MaybeAddPair(i - 1, i);
        }

        while (agenda.TryDequeue(out var top, out _))
        {
            // Stale entry: one side was merged away or grew since it was queued.
            if (lengths[top.Left] == 0 || lengths[top.Right] == 0 || lengths[top.Left] + lengths[top.Right] != top.Size)
            {
                continue;
            }
            lengths[top.Left] = top.Size;
            next[top.Left] = next[top.Right];
            if (next[top.Right] >= 0)
            {
                prev[next[top.Right]] = top.Left;
            }
            lengths[top.Right] = 0;
            MaybeAddPair(prev[top.Left], top.Left);
            MaybeAddPair(top.Left, next[top.Left]);
        }

        for (var index = 0; index != -1; index = next[index])
        {
            Resegment(text, starts[index], lengths[index], revMerge, output);
        }

        void MaybeAddPair(int left, int right)
        {
            if (left == -1 || right == -1 || frozen[left] || frozen[right])
            {
                return;
            }
            var start = starts[left];
            var size = lengths[left] + lengths[right];
            if (!_pieces.TryGetValue(normalized.AsSpan(start, size), out var id))
            {
                return;
            }
            agenda.Enqueue((left, right, size), (-_scores[id], left));
            if (_unused[id])
            {
                revMerge ??= new Dictionary<string, (int, int, int, int)>(StringComparer.Ordinal);
                revMerge[normalized.Substring(start, size)] = (start, lengths[left], starts[right], lengths[right]);
            }
        }
    }

    private void Resegment(
        ReadOnlySpan<char> text,
        int start,
        int length,
        Dictionary<string, (int LeftStart, int LeftLength, int RightStart, int RightLength)>? revMerge,
        List<PieceSpan> output)
    {
        var id = PieceToId(text.Slice(start, length));
        if (!_unused[id] || revMerge is null || !revMerge.TryGetValue(new string(text.Slice(start, length)), out var split))
        {
            output.Add(new PieceSpan(id, start, length));
            return;
        }
        Resegment(text, split.LeftStart, split.LeftLength, revMerge, output);
        Resegment(text, split.RightStart, split.RightLength, revMerge, output);
    }

    private int PieceToId(ReadOnlySpan<char> piece) =>
        _reserved.TryGetValue(piece, out var id) || _pieces.TryGetValue(piece, out id) ? id : _unkId;

    /// <summary>Length of the next initial symbol: a whole user-defined piece (frozen) or one code point.</summary>
    private (int Length, bool Freeze) PrefixMatch(ReadOnlySpan<char> rest)
    {
        foreach (var user in _userDefined)
        {
            if (rest.StartsWith(user, StringComparison.Ordinal))
            {
                return (user.Length, true);
            }
        }
        var length = char.IsHighSurrogate(rest[0]) && rest.Length > 1 && char.IsLowSurrogate(rest[1]) ? 2 : 1;
        return (length, false);
    }
}
