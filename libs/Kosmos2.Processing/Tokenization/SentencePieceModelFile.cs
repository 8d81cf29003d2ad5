using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>Kind of a sentencepiece piece (<c>ModelProto.SentencePiece.Type</c>).</summary>
public enum SentencePieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>Segmentation algorithm stored in <c>trainer_spec.model_type</c>.</summary>
public enum SentencePieceModelType
{
    Unigram = 1,
    Bpe = 2,
    Word = 3,
    Char = 4,
}

/// <summary>One vocabulary entry of a sentencepiece model.</summary>
public readonly record struct SentencePiece(string Piece, float Score, SentencePieceType Type);

/// <summary>
/// The parts of a sentencepiece <c>ModelProto</c> that encoding needs, read with a small hand-written protobuf
/// reader so the project does not depend on Google.Protobuf or generated code for one file format.
/// </summary>
public sealed class SentencePieceModelFile
{
    private SentencePieceModelFile(
        IReadOnlyList<SentencePiece> pieces,
        SentencePieceModelType modelType,
        bool byteFallback,
        int unkPieceId,
        SentencePieceNormalizerSpec normalizer)
    {
        Pieces = pieces;
        ModelType = modelType;
        ByteFallback = byteFallback;
        UnkPieceId = unkPieceId;
        Normalizer = normalizer;
    }

    public IReadOnlyList<SentencePiece> Pieces { get; }

    public SentencePieceModelType ModelType { get; }

    public bool ByteFallback { get; }

    /// <summary>Piece id of <c>&lt;unk&gt;</c> (<c>trainer_spec.unk_id</c>, default 0).</summary>
    public int UnkPieceId { get; }

    public SentencePieceNormalizerSpec Normalizer { get; }

    public static SentencePieceModelFile Load(string path) => Parse(File.ReadAllBytes(path));

    public static SentencePieceModelFile Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<SentencePiece>();
        var modelType = SentencePieceModelType.Unigram; // proto default
        var byteFallback = false;
        var unkId = 0;
        var normalizer = new SentencePieceNormalizerSpec();

        var reader = new ProtoReader(data);
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtoReader.LengthDelimited:
                    pieces.Add(ParsePiece(reader.ReadBytes()));
                    break;
                case 2 when wireType == ProtoReader.LengthDelimited:
                    ParseTrainerSpec(reader.ReadBytes(), ref modelType, ref byteFallback, ref unkId);
                    break;
                case 3 when wireType == ProtoReader.LengthDelimited:
                    normalizer = ParseNormalizerSpec(reader.ReadBytes());
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        if (pieces.Count == 0)
        {
            throw new InvalidDataException("The sentencepiece model holds no pieces.");
        }
        if (unkId < 0 || unkId >= pieces.Count || pieces[unkId].Type != SentencePieceType.Unknown)
        {
            throw new InvalidDataException($"The sentencepiece model's unk_id {unkId} is not an <unk> piece.");
        }
        return new SentencePieceModelFile(pieces, modelType, byteFallback, unkId, normalizer);
    }

    private static SentencePiece ParsePiece(ReadOnlySpan<byte> data)
    {
        var piece = string.Empty;
        var score = 0f;
        var type = SentencePieceType.Normal; // proto default
        var reader = new ProtoReader(data);
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtoReader.LengthDelimited:
                    piece = Encoding.UTF8.GetString(reader.ReadBytes());
                    break;
                case 2 when wireType == ProtoReader.Fixed32:
                    score = reader.ReadFloat();
                    break;
                case 3 when wireType == ProtoReader.Varint:
                    type = (SentencePieceType)(int)reader.ReadVarint();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
        return new SentencePiece(piece, score, type);
    }

    private static void ParseTrainerSpec(ReadOnlySpan<byte> data, ref SentencePieceModelType modelType, ref bool byteFallback, ref int unkId)
    {
        var reader = new ProtoReader(data);
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 3 when wireType == ProtoReader.Varint:
                    modelType = (SentencePieceModelType)(int)reader.ReadVarint();
                    break;
                case 35 when wireType == ProtoReader.Varint:
                    byteFallback = reader.ReadVarint() != 0;
                    break;
                case 40 when wireType == ProtoReader.Varint:
                    unkId = (int)reader.ReadVarint();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
    }

    private static SentencePieceNormalizerSpec ParseNormalizerSpec(ReadOnlySpan<byte> data)
    {
        var spec = new SentencePieceNormalizerSpec();
        var reader = new ProtoReader(data);
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtoReader.LengthDelimited:
                    spec = spec with { Name = Encoding.UTF8.GetString(reader.ReadBytes()) };
                    break;
                case 2 when wireType == ProtoReader.LengthDelimited:
                    spec = spec with { PrecompiledCharsmap = reader.ReadBytes().ToArray() };
                    break;
                case 3 when wireType == ProtoReader.Varint:
                    spec = spec with { AddDummyPrefix = reader.ReadVarint() != 0 };
                    break;
                case 4 when wireType == ProtoReader.Varint:
                    spec = spec with { RemoveExtraWhitespaces = reader.ReadVarint() != 0 };
                    break;
                case 5 when wireType == ProtoReader.Varint:
                    spec = spec with { EscapeWhitespaces = reader.ReadVarint() != 0 };
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
        return spec;
    }

    /// <summary>Minimal protobuf wire-format reader: varints, fixed32/64 and length-delimited fields.</summary>
    private ref struct ProtoReader
    {
        public const int Varint = 0;
        public const int Fixed64 = 1;
        public const int LengthDelimited = 2;
        public const int Fixed32 = 5;

        private readonly ReadOnlySpan<byte> _data;
        private int _pos;

        public ProtoReader(ReadOnlySpan<byte> data)
        {
            _data = data;
            _pos = 0;
        }

        public bool Next(out int field, out int wireType)
        {
            if (_pos >= _data.Length)
            {
                field = 0;
                wireType = 0;
                return false;
            }
            var key = ReadVarint();
            field = (int)(key >> 3);
            wireType = (int)(key & 7);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length)
                {
                    throw new InvalidDataException("Truncated varint in sentencepiece model.");
                }
                var b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }
            throw new InvalidDataException("Malformed varint in sentencepiece model.");
        }

        public float ReadFloat()
        {
            var span = Take(4);
            return BitConverter.Int32BitsToSingle(
                span[0] | (span[1] << 8) | (span[2] << 16) | (span[3] << 24));
        }

        public ReadOnlySpan<byte> ReadBytes()
        {
            var length = ReadVarint();
            if (length > int.MaxValue)
            {
                throw new InvalidDataException("Field too long in sentencepiece model.");
            }
            return Take((int)length);
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case Varint:
                    ReadVarint();
                    break;
                case Fixed64:
                    Take(8);
                    break;
                case LengthDelimited:
                    ReadBytes();
                    break;
                case Fixed32:
                    Take(4);
                    break;
                default:
                    throw new InvalidDataException($"Unsupported protobuf wire type {wireType} in sentencepiece model.");
            }
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count < 0 || _pos + count > _data.Length)
            {
                throw new InvalidDataException("Truncated field in sentencepiece model.");
            }
            var span = _data.Slice(_pos, count);
            _pos += count;
            return span;
        }
    }
}

/// <summary><c>NormalizerSpec</c> fields with their protobuf defaults.</summary>
public sealed record SentencePieceNormalizerSpec
{
    public string Name { get; init; } = string.Empty;

    public byte[] PrecompiledCharsmap { get; init; } = [];

    public bool AddDummyPrefix { get; init; } = true;

    public bool RemoveExtraWhitespaces { get; init; } = true;

    public bool EscapeWhitespaces { get; init; } = true;
}
