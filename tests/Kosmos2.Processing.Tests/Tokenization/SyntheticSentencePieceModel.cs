using System.Text;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>
/// Writes a sentencepiece <c>ModelProto</c> of any size (the real 64,000-piece model is not available here), so
/// load time and encoding speed can be measured at real scale. Uses the golden model's nmt_nfkc charsmap.
/// </summary>
internal static class SyntheticSentencePieceModel
{
    public static byte[] Build(int pieceCount, SentencePieceModelType modelType, byte[] precompiledCharsmap, int seed = 42)
    {
        var random = new Random(seed);
        var pieces = new List<(string Piece, float Score, SentencePieceType Type)>
        {
            ("<unk>", 0, SentencePieceType.Unknown),
            ("<s>", 0, SentencePieceType.Control),
            ("</s>", 0, SentencePieceType.Control),
        };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!'";
        foreach (var c in "\u2581" + Letters)
        {
            Add(c.ToString());
        }
        while (pieces.Count < pieceCount)
        {
            var length = random.Next(2, 12);
            var sb = new StringBuilder(random.Next(2) == 0 ? "\u2581" : string.Empty);
            for (var i = 0; i < length; i++)
            {
                sb.Append(Letters[random.Next(26)]);
            }
            Add(sb.ToString());
        }

        using var model = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
        {
            using var p = new MemoryStream();
            WriteBytes(p, 1, Encoding.UTF8.GetBytes(piece));
            WriteFloat(p, 2, score);
            WriteVarint(p, 3, (ulong)type);
            WriteBytes(model, 1, p.ToArray());
        }
        using (var trainer = new MemoryStream())
        {
            WriteVarint(trainer, 3, (ulong)modelType);
            WriteBytes(model, 2, trainer.ToArray());
        }
        using (var normalizer = new MemoryStream())
        {
            WriteBytes(normalizer, 1, "nmt_nfkc"u8.ToArray());
            WriteBytes(normalizer, 2, precompiledCharsmap);
            WriteBytes(model, 3, normalizer.ToArray());
        }
        return model.ToArray();

        void Add(string piece)
        {
            if (seen.Add(piece))
            {
                pieces.Add((piece, -pieces.Count / 10f, SentencePieceType.Normal));
            }
        }
    }

    private static void WriteKey(Stream s, int field, int wireType) => WriteRawVarint(s, (ulong)((field << 3) | wireType));

    private static void WriteVarint(Stream s, int field, ulong value)
    {
        WriteKey(s, field, 0);
        WriteRawVarint(s, value);
    }

    private static void WriteFloat(Stream s, int field, float value)
    {
        WriteKey(s, field, 5);
        s.Write(BitConverter.GetBytes(value));
    }

    private static void WriteBytes(Stream s, int field, byte[] value)
    {
        WriteKey(s, field, 2);
        WriteRawVarint(s, (ulong)value.Length);
        s.Write(value);
    }

    private static void WriteRawVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        s.WriteByte((byte)value);
    }
}
