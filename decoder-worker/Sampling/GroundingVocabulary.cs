namespace Kosmos2.DecoderWorker.Sampling;

/// <summary>
/// The ids the grounding grammar needs, derived from the model's vocabulary size by the Kosmos-2 tokenizer layout
/// (KOSMOS2_SPEC.md §7.1): <c>&lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt;</c> = 0…3, sentencepiece pieces from 4,
/// <c>&lt;mask&gt;</c>, the 11 Kosmos tags, then the 1,024 patch-index tokens last. A checkpoint with another
/// tokenizer size (the tiny golden one: 2,037) gets its own ids; nothing here is a literal of the real model.
/// </summary>
public sealed class GroundingVocabulary
{
    /// <summary>Patch-index tokens: a 32 × 32 grid (a property of the Kosmos-2 format, not of the vocabulary).</summary>
    public const int PatchCount = 1024;

    public const int GridSide = 32;

    public const int EosId = 2;

    /// <summary>First id of an ordinary sentencepiece piece (0…3 are the specials).</summary>
    public const int FirstPieceId = 4;

    /// <summary>The Kosmos tags in id order, after <c>&lt;mask&gt;</c>.</summary>
    private const int KosmosTagCount = 11;

    private GroundingVocabulary(int vocabSize)
    {
        VocabSize = vocabSize;
        FirstPatchId = vocabSize - PatchCount;
        var firstTag = FirstPatchId - KosmosTagCount;
        MaskId = firstTag - 1;
        ImageEndId = firstTag + 2;
        PhraseStartId = firstTag + 5;
        PhraseEndId = firstTag + 6;
        ObjectStartId = firstTag + 7;
        ObjectEndId = firstTag + 8;
        DelimiterId = firstTag + 9;
    }

    public int VocabSize { get; }

    /// <summary><c>&lt;mask&gt;</c>: the first id that is not an ordinary piece (then the tags, then the patches).</summary>
    public int MaskId { get; }

    public int ImageEndId { get; }

    public int PhraseStartId { get; }

    public int PhraseEndId { get; }

    public int ObjectStartId { get; }

    public int ObjectEndId { get; }

    /// <summary><c>&lt;/delimiter_of_multi_objects/&gt;</c>.</summary>
    public int DelimiterId { get; }

    /// <summary><c>&lt;patch_index_0000&gt;</c>.</summary>
    public int FirstPatchId { get; }

    /// <summary>True when a vocabulary of this size can hold the layout (at least one ordinary piece).</summary>
    public static bool Supports(int vocabSize) => vocabSize > PatchCount + KosmosTagCount + 1 + FirstPieceId;

    public static GroundingVocabulary FromVocabSize(int vocabSize)
    {
        if (!Supports(vocabSize))
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize,
                $"A Kosmos-2 vocabulary holds 4 specials, pieces, <mask>, {KosmosTagCount} tags and {PatchCount} patch tokens; {vocabSize} ids are too few.");
        }
        return new GroundingVocabulary(vocabSize);
    }

    /// <summary>The patch index (0…1023) of a patch token, or −1.</summary>
    public int PatchIndex(int id) => (uint)(id - FirstPatchId) < PatchCount ? id - FirstPatchId : -1;

    /// <summary>An ordinary piece: text that can stand inside <c>&lt;phrase&gt;…&lt;/phrase&gt;</c>.</summary>
    public bool IsPiece(int id) => id >= FirstPieceId && id < MaskId;
}
