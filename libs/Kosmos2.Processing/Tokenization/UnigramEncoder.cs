using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// sentencepiece's unigram segmentation (<c>unigram_model.cc</c>, EncodeOptimized): Viterbi over piece scores,
/// moving one code point at a time; a code point no piece covers becomes <c>&lt;unk&gt;</c> scored min score − 10.
/// Candidate sums are formed in double and compared with the float best score, as the C++ code does.
/// </summary>
internal sealed class UnigramEncoder : ISentencePieceEncoder
{
    private const float UnkPenalty = 10.0f;
    private const float FltMin = 1.17549435E-38f;

    private readonly Dictionary<long, int> _transitions;
    private readonly int[] _nodePiece;
    private readonly float[] _scores;
    private readonly bool[] _userDefined;
    private readonly int[] _utf8Lengths;
    private readonly int _unkId;
    private readonly float _unkScore;
    private readonly float _maxScore;

    public UnigramEncoder(IReadOnlyList<SentencePiece> pieces, int unkId)
    {
        _unkId = unkId;
        // Piece trie over UTF-16 units: one hash probe per character, and the walk stops as soon as no piece continues.
        _transitions = new Dictionary<long, int>(pieces.Sum(p => p.Piece.Length)); // upper bound on nodes: no rehashing
        var nodePiece = new List<int> { -1 };
        _scores = new float[pieces.Count];
        _userDefined = new bool[pieces.Count];
        _utf8Lengths = new int[pieces.Count];
        var minScore = float.MaxValue;
        var maxScore = FltMin; // the C++ starts from FLT_MIN (smallest positive normal), not the lowest float
        for (var i = 0; i < pieces.Count; i++)
        {
            var p = pieces[i];
            _scores[i] = p.Score;
            if (p.Type == SentencePieceType.Normal)
            {
                minScore = Math.Min(minScore, p.Score);
                maxScore = Math.Max(maxScore, p.Score);
            }
            // Unused pieces sit in the trie but are skipped during the search, so leaving them out is the same.
            if (p.Type is SentencePieceType.Normal or SentencePieceType.UserDefined && p.Piece.Length > 0)
            {
                var node = 0;
                foreach (var c in p.Piece)
                {
                    var key = ((long)node << 16) | c;
                    if (!_transitions.TryGetValue(key, out node))
                    {
                        node = nodePiece.Count;
                        nodePiece.Add(-1);
                        _transitions.Add(key, node);
                    }
                }
                if (nodePiece[node] >= 0)
                {
                    continue; // duplicate piece string: the first id wins, as in sentencepiece's trie
                }
                nodePiece[node] = i;
                _userDefined[i] = p.Type == SentencePieceType.UserDefined;
                _utf8Lengths[i] = _userDefined[i] ? Encoding.UTF8.GetByteCount(p.Piece) : 0;
            }
        }
        _nodePiece = [.. nodePiece];
        _unkScore = minScore - UnkPenalty;
        _maxScore = maxScore;
    }

    public void Encode(string normalized, List<PieceSpan> output)
    {
        var size = normalized.Length;
        if (size == 0)
        {
            return;
        }
        var bestScore = new float[size + 1];
        var startsAt = new int[size + 1];
        var ids = new int[size + 1];
        Array.Fill(startsAt, -1);

        var text = normalized.AsSpan();
        var start = 0;
        while (start < size)
        {
            var charLength = char.IsHighSurrogate(text[start]) && start + 1 < size && char.IsLowSurrogate(text[start + 1]) ? 2 : 1;
            var scoreTillHere = bestScore[start];
            var hasSingleNode = false;
            var node = 0;
            for (var end = start + 1; end <= size; end++)
            {
                if (!_transitions.TryGetValue(((long)node << 16) | text[end - 1], out node))
                {
                    break;
                }
                var id = _nodePiece[node];
                if (id < 0)
                {
                    continue;
                }
                double score = _userDefined[id]
                    ? ((double)(_utf8Lengths[id] * _maxScore)) - 0.1
                    : _scores[id];
                var candidate = score + scoreTillHere;
                if (startsAt[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = (float)candidate;
                    startsAt[end] = start;
                    ids[end] = id;
                }
                if (end - start == charLength)
                {
                    hasSingleNode = true;
                }
            }
            if (!hasSingleNode)
            {
                var end = start + charLength;
                var candidate = _unkScore + scoreTillHere;
                if (startsAt[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    startsAt[end] = start;
                    ids[end] = _unkId;
                }
            }
            start += charLength;
        }

        var firstNew = output.Count;
        for (var end = size; end > 0; end = startsAt[end])
        {
            output.Add(new PieceSpan(ids[end], startsAt[end], end - startsAt[end]));
        }
        output.Reverse(firstNew, output.Count - firstNew);
    }
}
