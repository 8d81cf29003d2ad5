using System.Buffers.Binary;
using System.Text;

namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// sentencepiece's <c>Normalizer</c>: longest-prefix rewriting with the model's precompiled charsmap
/// (a darts-clone double-array trie over UTF-8 plus a blob of NUL-terminated replacements, e.g. nmt_nfkc),
/// then whitespace handling (drop leading/trailing/repeated spaces, dummy <c>▁</c> prefix, spaces → <c>▁</c>).
/// Works on UTF-8 bytes like the C++ code so trie matches and "ends with a space" checks agree byte for byte.
/// </summary>
public sealed class SentencePieceNormalizer
{
    /// <summary>U+2581, sentencepiece's visible space.</summary>
    public const char SpaceSymbol = '\u2581';

    private static readonly byte[] SpaceSymbolUtf8 = [0xE2, 0x96, 0x81];
    private static readonly byte[] ReplacementCharUtf8 = [0xEF, 0xBF, 0xBD];

    private readonly uint[] _trie;
    private readonly byte[] _normalized;
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;
    private readonly byte[][] _userDefined;

    /// <param name="spec">The model's normalizer spec.</param>
    /// <param name="userDefinedPieces">User-defined pieces: sentencepiece passes them through unnormalized (longest match first).</param>
    public SentencePieceNormalizer(SentencePieceNormalizerSpec spec, IEnumerable<string>? userDefinedPieces = null)
    {
        _userDefined = [.. (userDefinedPieces ?? []).Where(p => p.Length > 0).Select(Encoding.UTF8.GetBytes).OrderByDescending(b => b.Length)];
        _addDummyPrefix = spec.AddDummyPrefix;
        _removeExtraWhitespaces = spec.RemoveExtraWhitespaces;
        _escapeWhitespaces = spec.EscapeWhitespaces;
        (_trie, _normalized) = DecodeCharsmap(spec.PrecompiledCharsmap);
    }

    /// <summary>Normalises one text segment; the result uses <c>▁</c> for spaces (when escaping is on).</summary>
    public string Normalize(string text)
    {
        if (text.Length == 0)
        {
            return string.Empty;
        }
        var input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length + 8);
        var pos = 0;

        if (_removeExtraWhitespaces)
        {
            // Ignores heading spaces (after normalisation, so e.g. U+3000 counts too).
            while (pos < input.Length)
            {
                var consumed = NormalizePrefix(input, pos, out var replacement);
                if (replacement.Length != 1 || replacement[0] != (byte)' ')
                {
                    break;
                }
                pos += consumed;
            }
        }
        if (pos >= input.Length)
        {
            return string.Empty;
        }

        if (_addDummyPrefix)
        {
            AppendSpace(output);
        }

        var isPrevSpace = _removeExtraWhitespaces;
        while (pos < input.Length)
        {
            var consumed = NormalizePrefix(input, pos, out var sp);
            if (isPrevSpace)
            {
                while (!sp.IsEmpty && sp[0] == (byte)' ')
                {
                    sp = sp[1..];
                }
            }
            if (!sp.IsEmpty)
            {
                foreach (var b in sp)
                {
                    if (_escapeWhitespaces && b == (byte)' ')
                    {
                        output.AddRange(SpaceSymbolUtf8);
                    }
                    else
                    {
                        output.Add(b);
                    }
                }
                isPrevSpace = sp[^1] == (byte)' ';
            }
            pos += consumed;
            if (!_removeExtraWhitespaces)
            {
                isPrevSpace = false;
            }
        }

        if (_removeExtraWhitespaces)
        {
            // Ignores trailing spaces.
            ReadOnlySpan<byte> space = _escapeWhitespaces ? SpaceSymbolUtf8 : " "u8;
            while (output.Count >= space.Length && EndsWith(output, space))
            {
                output.RemoveRange(output.Count - space.Length, space.Length);
            }
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output));
    }

    private void AppendSpace(List<byte> output)
    {
        if (_escapeWhitespaces)
        {
            output.AddRange(SpaceSymbolUtf8);
        }
        else
        {
            output.Add((byte)' ');
        }
    }

    private static bool EndsWith(List<byte> output, ReadOnlySpan<byte> suffix) =>
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output).EndsWith(suffix);

    /// <summary>Consumed byte count and its replacement at <paramref name="pos"/> (sentencepiece's NormalizePrefix).</summary>
    private int NormalizePrefix(byte[] input, int pos, out ReadOnlySpan<byte> replacement)
    {
        foreach (var user in _userDefined)
        {
            if (input.AsSpan(pos).StartsWith(user))
            {
                replacement = user;
                return user.Length;
            }
        }

        var longestLength = 0;
        var longestValue = 0;
        if (_trie.Length > 0)
        {
            // darts-clone commonPrefixSearch; keep the longest match.
            uint nodePos = 0;
            var unit = _trie[0];
            nodePos ^= Offset(unit);
            for (var i = pos; i < input.Length; i++)
            {
                var c = input[i];
                nodePos ^= c;
                if (nodePos >= _trie.Length)
                {
                    break;
                }
                unit = _trie[nodePos];
                if (Label(unit) != c)
                {
                    break;
                }
                nodePos ^= Offset(unit);
                if (HasLeaf(unit))
                {
                    if (nodePos >= _trie.Length)
                    {
                        break;
                    }
                    longestLength = i + 1 - pos;
                    longestValue = (int)Value(_trie[nodePos]);
                }
            }
        }

        if (longestLength == 0)
        {
            var length = ValidUtf8Length(input, pos);
            if (length == 0)
            {
                replacement = ReplacementCharUtf8;
                return 1;
            }
            replacement = input.AsSpan(pos, length);
            return length;
        }

        if (longestValue < 0 || longestValue >= _normalized.Length)
        {
            throw new InvalidDataException("precompiled_charsmap points outside its normalized-string blob.");
        }
        var end = Array.IndexOf(_normalized, (byte)0, longestValue);
        if (end < 0)
        {
            end = _normalized.Length;
        }
        replacement = _normalized.AsSpan(longestValue, end - longestValue);
        return longestLength;
    }

    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static uint Value(uint unit) => unit & ((1U << 31) - 1);

    private static uint Label(uint unit) => unit & ((1U << 31) | 0xFF);

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1U << 9)) >> 6);

    /// <summary>Length of the valid UTF-8 character at <paramref name="pos"/>, 0 when malformed.</summary>
    private static int ValidUtf8Length(byte[] input, int pos)
    {
        var b = input[pos];
        int length;
        if (b < 0x80)
        {
            return 1;
        }
        else if ((b & 0xE0) == 0xC0)
        {
            length = 2;
        }
        else if ((b & 0xF0) == 0xE0)
        {
            length = 3;
        }
        else if ((b & 0xF8) == 0xF0)
        {
            length = 4;
        }
        else
        {
            return 0;
        }
        if (pos + length > input.Length)
        {
            return 0;
        }
        for (var i = 1; i < length; i++)
        {
            if ((input[pos + i] & 0xC0) != 0x80)
            {
                return 0;
            }
        }
        return length;
    }

    /// <summary>Splits the charsmap blob: uint32 trie size (little endian), trie units, normalized strings.</summary>
    private static (uint[] Trie, byte[] Normalized) DecodeCharsmap(byte[] blob)
    {
        if (blob.Length == 0)
        {
            return ([], []);
        }
        if (blob.Length < 4)
        {
            throw new InvalidDataException("precompiled_charsmap is too short.");
        }
        var trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize > blob.Length - 4)
        {
            throw new InvalidDataException("precompiled_charsmap has an invalid trie size.");
        }
        var trie = new uint[trieSize / 4];
        for (var i = 0; i < trie.Length; i++)
        {
            trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + (i * 4), 4));
        }
        var normalized = blob.AsSpan(4 + (int)trieSize).ToArray();
        return (trie, normalized);
    }
}
