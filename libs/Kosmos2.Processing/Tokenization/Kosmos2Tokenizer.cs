namespace Kosmos2.Processing.Tokenization;

/// <summary>
/// The Kosmos-2 tokenizer (XLMRobertaTokenizerFast semantics over a sentencepiece model, KOSMOS2_SPEC.md §7):
/// fairseq +1 id offset, <c>&lt;mask&gt;</c>, the Kosmos tags and the 1,024 patch-index tokens.
/// </summary>
public sealed class Kosmos2Tokenizer
{
    public const int BosId = 0;
    public const int PadId = 1;
    public const int EosId = 2;
    public const int UnkId = 3;

    private Kosmos2Tokenizer()
    {
    }

    /// <summary>Loads <c>sentencepiece.bpe.model</c> (BPE or unigram, read from the file) and the added-token layout from a checkpoint folder.</summary>
    public static Kosmos2Tokenizer Load(string directory) => throw new NotImplementedException("Tokenizer: in progress.");

    /// <summary>Total ids (pieces + 1 + 1 mask + 1,035 Kosmos tokens); 65,037 for the real model.</summary>
    public int VocabSize => throw new NotImplementedException();

    /// <summary>Id of an added token such as <c>&lt;image&gt;</c> or <c>&lt;patch_index_0044&gt;</c>.</summary>
    public int TokenToId(string token) => throw new NotImplementedException();

    /// <summary>Token string of an id (pieces keep their <c>▁</c>).</summary>
    public string IdToToken(int id) => throw new NotImplementedException();

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/> wraps it as <c>&lt;s&gt; … &lt;/s&gt;</c>.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false) => throw new NotImplementedException();

    /// <summary>Decodes ids like <c>batch_decode</c> (SPEC §7.3).</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true) =>
        throw new NotImplementedException();
}
