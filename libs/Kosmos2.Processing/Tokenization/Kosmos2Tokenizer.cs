using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// The Kosmos-2 tokenizer (XLMRobertaTokenizerFast semantics over a sentencepiece model, KOSMOS2_SPEC.md §7):
/// fairseq +1 id offset, <c>&lt;mask&gt;</c>, the Kosmos tags and the 1,024 patch-index tokens.
/// Immutable after <see cref="Load"/>, so one instance can be shared across threads.
/// </summary>
public sealed class Kosmos2Tokenizer
{
    public const int BosId = 0;
    public const int PadId = 1;
    public const int EosId = 2;
    public const int UnkId = 3;

    /// <summary>The model file keeps this name even for unigram models.</summary>
    public const string ModelFileName = "sentencepiece.bpe.model";

    /// <summary>HF id = piece id + 1 (fairseq reserved <c>&lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt;</c> in front).</summary>
    private const int FairseqOffset = 1;

    private static readonly (string From, string To)[] CleanUps =
    [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ];

    private readonly SentencePieceProcessor _sentencePiece;
    private readonly AddedTokenSplitter _splitter;
    private readonly string[] _idToToken;
    private readonly bool[] _special;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly int _unkPieceId;

    private Kosmos2Tokenizer(SentencePieceProcessor sentencePiece, IReadOnlyList<AddedToken> addedTokens)
    {
        _sentencePiece = sentencePiece;
        _unkPieceId = sentencePiece.Model.UnkPieceId;
        var pieces = sentencePiece.Model.Pieces;
        PieceCount = pieces.Count;
        MaskId = PieceCount + 1;
        var firstKosmosId = PieceCount + 2;
        ImageTokenId = firstKosmosId + 1;
        ImageEndTokenId = firstKosmosId + 2;
        PhraseStartId = firstKosmosId + 5;
        PhraseEndId = firstKosmosId + 6;
        ObjectStartId = firstKosmosId + 7;
        ObjectEndId = firstKosmosId + 8;
        DelimiterId = firstKosmosId + 9;
        GroundingTokenId = firstKosmosId + 10;
        FirstPatchIndexId = firstKosmosId + Kosmos2AddedTokens.KosmosTags.Count;
        VocabSize = FirstPatchIndexId + Kosmos2AddedTokens.PatchIndexCount;

        _idToToken = new string[VocabSize];
        _special = new bool[VocabSize];
        for (var p = 0; p < pieces.Count; p++)
        {
            _idToToken[p + FairseqOffset] = pieces[p].Piece;
        }
        foreach (var token in addedTokens)
        {
            _idToToken[token.Id] = token.Content;
            _special[token.Id] = token.Special;
        }
        _tokenToId = new Dictionary<string, int>(VocabSize, StringComparer.Ordinal);
        // Pieces first, added tokens last so they win (e.g. the piece "<unk>" maps to 3, "<s>" to 0).
        for (var id = FairseqOffset; id <= PieceCount; id++)
        {
            _tokenToId[_idToToken[id]] = id;
        }
        foreach (var token in addedTokens)
        {
            _tokenToId[token.Content] = token.Id;
        }
        _splitter = new AddedTokenSplitter(addedTokens);
    }

    /// <summary>Loads <c>sentencepiece.bpe.model</c> (BPE or unigram, read from the file) and the added-token layout from a checkpoint folder.</summary>
    public static Kosmos2Tokenizer Load(string directory)
    {
        var modelPath = Path.Combine(directory, ModelFileName);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException($"No {ModelFileName} in {directory}.", modelPath);
        }
        var model = SentencePieceModelFile.Load(modelPath);
        var addedTokens = Kosmos2AddedTokens.Load(directory, model.Pieces.Count);
        return new Kosmos2Tokenizer(new SentencePieceProcessor(model), addedTokens);
    }

    /// <summary>Total ids (pieces + 1 + 1 mask + 1,035 Kosmos tokens); 65,037 for the real model.</summary>
    public int VocabSize { get; }

    /// <summary>Pieces in the sentencepiece model (64,000 for the real model).</summary>
    public int PieceCount { get; }

    public SentencePieceModelType ModelType => _sentencePiece.Model.ModelType;

    public int MaskId { get; }

    public int ImageTokenId { get; }

    public int ImageEndTokenId { get; }

    public int GroundingTokenId { get; }

    public int PhraseStartId { get; }

    public int PhraseEndId { get; }

    public int ObjectStartId { get; }

    public int ObjectEndId { get; }

    /// <summary>Id of <c>&lt;/delimiter_of_multi_objects/&gt;</c>.</summary>
    public int DelimiterId { get; }

    /// <summary>Id of <c>&lt;patch_index_0000&gt;</c>.</summary>
    public int FirstPatchIndexId { get; }

    /// <summary>Id of <c>&lt;patch_index_NNNN&gt;</c>, <paramref name="n"/> in 0..1023.</summary>
    public int PatchIndexId(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(n, Kosmos2AddedTokens.PatchIndexCount);
        return FirstPatchIndexId + n;
    }

    /// <summary>The patch index of a patch-index token id.</summary>
    public bool TryGetPatchIndex(int id, out int n)
    {
        n = id - FirstPatchIndexId;
        return n is >= 0 and < Kosmos2AddedTokens.PatchIndexCount;
    }

    /// <summary>Whether <c>skip_special_tokens</c> drops this id (<c>&lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt; &lt;mask&gt;</c>; Kosmos tags are not special).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_special.Length && _special[id];

    /// <summary>Id of a token: an added token such as <c>&lt;image&gt;</c> or <c>&lt;patch_index_0044&gt;</c>, or a piece such as <c>▁An</c>; unknown strings give <see cref="UnkId"/>.</summary>
    public int TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : UnkId;

    /// <summary>Token string of an id (pieces keep their <c>▁</c>).</summary>
    public string IdToToken(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, VocabSize);
        return _idToToken[id];
    }

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/> wraps it as <c>&lt;s&gt; … &lt;/s&gt;</c>.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 2 + 4);
        if (addSpecialTokens)
        {
            ids.Add(BosId);
        }
        var pieceIds = new List<int>();
        _splitter.Split(
            text,
            segment =>
            {
                // Each segment is its own sentencepiece call, so each gets its own ▁ prefix.
                pieceIds.Clear();
                _sentencePiece.Encode(segment, pieceIds);
                foreach (var p in pieceIds)
                {
                    ids.Add(p == _unkPieceId ? UnkId : p + FairseqOffset);
                }
            },
            token => ids.Add(token.Id));
        if (addSpecialTokens)
        {
            ids.Add(EosId);
        }
        return [.. ids];
    }

    /// <summary>Token strings of <see cref="Encode"/>'s ids.</summary>
    public string[] EncodeToTokens(string text, bool addSpecialTokens = false) =>
        [.. Encode(text, addSpecialTokens).Select(IdToToken)];

    /// <summary>Decodes ids like <c>batch_decode</c> (SPEC §7.3).</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder(ids.Count * 4);
        var first = true;
        foreach (var id in ids)
        {
            AppendDecoded(text, id, skipSpecialTokens, ref first);
        }
        if (cleanUpTokenizationSpaces)
        {
            CleanUp(text);
        }
        return text.ToString();
    }

    /// <summary>A decoder that yields text token by token, concatenating to exactly <see cref="Decode"/>'s result.</summary>
    public Kosmos2IncrementalDecoder CreateIncrementalDecoder(bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true) =>
        new(this, skipSpecialTokens, cleanUpTokenizationSpaces);

    /// <summary>
    /// Metaspace decoding of one id: <c>▁</c> is a space, except that the first kept token loses every <c>▁</c>;
    /// added tokens are appended as they are (no separators).
    /// </summary>
    internal void AppendDecoded(StringBuilder text, int id, bool skipSpecialTokens, ref bool first)
    {
        var token = IdToToken(id);
        if (skipSpecialTokens && _special[id])
        {
            return;
        }
        foreach (var c in token)
        {
            if (c != SentencePieceNormalizer.SpaceSymbol)
            {
                text.Append(c);
            }
            else if (!first)
            {
                text.Append(' ');
            }
        }
        first = false;
    }

    /// <summary>HF's <c>clean_up_tokenization</c>: the replacements in their fixed order.</summary>
    internal static void CleanUp(StringBuilder text)
    {
        foreach (var (from, to) in CleanUps)
        {
            text.Replace(from, to);
        }
    }
}
