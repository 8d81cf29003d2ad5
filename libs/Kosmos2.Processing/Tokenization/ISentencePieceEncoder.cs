namespace Kosmos2.Processing.Tokenization;

/// <summary>One piece of a segmentation: sentencepiece piece id and its span in the normalized text (UTF-16 units).</summary>
internal readonly record struct PieceSpan(int PieceId, int Start, int Length);

/// <summary>The model-specific step of sentencepiece (unigram Viterbi or BPE merges) over already-normalized text.</summary>
internal interface ISentencePieceEncoder
{
    /// <summary>Appends the segmentation of <paramref name="normalized"/>; unknown characters get the model's unk id.</summary>
    void Encode(string normalized, List<PieceSpan> output);
}
