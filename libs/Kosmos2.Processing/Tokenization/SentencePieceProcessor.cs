using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// Plain sentencepiece encoding (what <c>spm_encode --output_format=id</c> does): normalize, segment with the
/// model's algorithm, then merge each run of unknown pieces into one <c>&lt;unk&gt;</c> (or, with byte fallback,
/// spell unknown text as <c>&lt;0xXX&gt;</c> byte pieces). Ids here are piece ids, without the fairseq offset.
/// </summary>
public sealed class SentencePieceProcessor
{
    private readonly SentencePieceNormalizer _normalizer;
    private readonly ISentencePieceEncoder _encoder;
    private readonly int[] _bytePieces;

    public SentencePieceProcessor(SentencePieceModelFile model)
    {
        Model = model;
        _normalizer = new SentencePieceNormalizer(
            model.Normalizer,
            model.Pieces.Where(p => p.Type == SentencePieceType.UserDefined).Select(p => p.Piece));
        _encoder = model.ModelType switch
        {
            SentencePieceModelType.Unigram => new UnigramEncoder(model.Pieces, model.UnkPieceId),
            SentencePieceModelType.Bpe => new BpeEncoder(model.Pieces, model.UnkPieceId),
            _ => throw new NotSupportedException($"sentencepiece model_type {model.ModelType} is not supported (only unigram and BPE)."),
        };
        _bytePieces = new int[256];
        Array.Fill(_bytePieces, -1);
        for (var i = 0; i < model.Pieces.Count; i++)
        {
            var p = model.Pieces[i];
            if (p.Type == SentencePieceType.Byte && TryParseBytePiece(p.Piece, out var value))
            {
                _bytePieces[value] = i;
            }
        }
    }

    public SentencePieceModelFile Model { get; }

    /// <summary>The normalized form of <paramref name="text"/> (with <c>▁</c> for spaces).</summary>
    public string Normalize(string text) => _normalizer.Normalize(text);

    /// <summary>Appends the piece ids of <paramref name="text"/> to <paramref name="pieceIds"/>.</summary>
    public void Encode(string text, List<int> pieceIds)
    {
        var normalized = _normalizer.Normalize(text);
        if (normalized.Length == 0)
        {
            return;
        }
        var spans = new List<PieceSpan>(normalized.Length);
        _encoder.Encode(normalized, spans);

        var unk = Model.UnkPieceId;
        var previousWasUnk = false;
        foreach (var span in spans)
        {
            if (span.PieceId != unk)
            {
                pieceIds.Add(span.PieceId);
                previousWasUnk = false;
            }
            else if (Model.ByteFallback)
            {
                AppendBytes(normalized.AsSpan(span.Start, span.Length), pieceIds);
                previousWasUnk = false;
            }
            else if (!previousWasUnk)
            {
                // A run of unknown characters is one <unk>, as sentencepiece emits it.
                pieceIds.Add(unk);
                previousWasUnk = true;
            }
        }
    }

    private void AppendBytes(ReadOnlySpan<char> text, List<int> pieceIds)
    {
        // Rare path (unknown text only), so a heap copy is fine.
        foreach (var b in Encoding.UTF8.GetBytes(text.ToArray()))
        {
            var id = _bytePieces[b];
            pieceIds.Add(id >= 0 ? id : Model.UnkPieceId);
        }
    }

    private static bool TryParseBytePiece(string piece, out int value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' &&
            int.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }
}
