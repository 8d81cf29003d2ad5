using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>Layout ids and behaviours of SPEC §7 on the two golden tokenizers (the real model is not available here).</summary>
[Trait("Category", "Golden")]
public sealed class Kosmos2TokenizerTests
{
    private static Kosmos2Tokenizer Bpe => TokenizerGoldenData.Tokenizer(RepoPaths.GoldenModelDir);

    private static Kosmos2Tokenizer Unigram => TokenizerGoldenData.Tokenizer(Path.Combine(RepoPaths.GoldenDir, "tokenizer_unigram"));

    /// <summary>The golden tokenizer folders: <c>model/</c> and, when the family has it, <c>tokenizer_unigram/</c>.</summary>
    public static TheoryData<string> TokenizerFolders()
    {
        var data = new TheoryData<string> { "model" };
        if (File.Exists(Path.Combine(RepoPaths.GoldenDir, "tokenizer_unigram", Kosmos2Tokenizer.ModelFileName)))
        {
            data.Add("tokenizer_unigram");
        }
        return data;
    }

    /// <summary>
    /// Every id of the folder's <c>tokenizer_config.json</c> (<c>added_tokens_decoder</c>) and <c>added_tokens.json</c> — the
    /// files Hugging Face wrote — is the id the tokenizer gives, and the layout of SPEC §7.1 follows from the piece count:
    /// <c>&lt;mask&gt;</c> = pieces + 1, the Kosmos tags after it, then the 1,024 patch tokens, the last id = vocabulary − 1.
    /// The model type and piece count are also checked against the manifest where it states them.
    /// </summary>
    [Theory]
    [MemberData(nameof(TokenizerFolders))]
    public void Golden_layout_matches_the_files_hugging_face_wrote(string folder)
    {
        var dir = Path.Combine(RepoPaths.GoldenDir, folder);
        var t = TokenizerGoldenData.Tokenizer(dir);
        var expected = GoldenTokenizerFiles.AddedTokenIds(dir);
        Assert.NotEmpty(expected);
        foreach (var (token, id) in expected)
        {
            Assert.Equal(id, t.TokenToId(token));
            Assert.Equal(token, t.IdToToken(id));
        }

        Assert.Equal(expected["<mask>"], t.MaskId);
        Assert.Equal(t.PieceCount + 1, t.MaskId);
        Assert.Equal(expected.Values.Max() + 1, t.VocabSize);
        Assert.Equal(expected["<image>"], t.ImageTokenId);
        Assert.Equal(expected["</image>"], t.ImageEndTokenId);
        Assert.Equal(expected["<phrase>"], t.PhraseStartId);
        Assert.Equal(expected["</phrase>"], t.PhraseEndId);
        Assert.Equal(expected["<object>"], t.ObjectStartId);
        Assert.Equal(expected["</object>"], t.ObjectEndId);
        Assert.Equal(expected["</delimiter_of_multi_objects/>"], t.DelimiterId);
        Assert.Equal(expected["<grounding>"], t.GroundingTokenId);
        for (var n = 0; n < PatchIndexCodec.PatchCount; n++)
        {
            var id = expected[$"<patch_index_{n:D4}>"];
            Assert.Equal(id, t.PatchIndexId(n));
            Assert.True(t.TryGetPatchIndex(id, out var back));
            Assert.Equal(n, back);
        }
        Assert.Equal(t.VocabSize - 1, t.PatchIndexId(PatchIndexCodec.PatchCount - 1));
        Assert.False(t.TryGetPatchIndex(t.GroundingTokenId, out _));

        if (GoldenTokenizerFiles.ManifestFacts(folder) is { } facts)
        {
            Assert.Equal(facts.ModelType, t.ModelType);
            if (facts.Pieces is { } pieces)
            {
                Assert.Equal(pieces, t.PieceCount);
            }
        }
    }

    [Fact]
    public void Fixed_ids_and_specials()
    {
        var t = Bpe;
        Assert.Equal(["<s>", "<pad>", "</s>", "<unk>"], Enumerable.Range(0, 4).Select(t.IdToToken));
        Assert.All(new[] { 0, 1, 2, 3, t.MaskId }, id => Assert.True(t.IsSpecial(id)));
        Assert.All(new[] { 4, t.ImageTokenId, t.GroundingTokenId, t.PatchIndexId(5) }, id => Assert.False(t.IsSpecial(id)));
        Assert.False(t.IsSpecial(-1));
        Assert.False(t.IsSpecial(t.VocabSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.IdToToken(t.VocabSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.PatchIndexId(1024));
        Assert.Equal(Kosmos2Tokenizer.UnkId, t.TokenToId("no such token"));
        // Pieces are id = piece id + 1; their strings round-trip.
        Assert.Equal(4, t.TokenToId(t.IdToToken(4)));
        Assert.Equal(t.PieceCount, t.TokenToId(t.IdToToken(t.PieceCount)));
    }

    [Theory]
    [InlineData("x")]
    [InlineData("a")]
    [InlineData("I")]
    [InlineData(".")]
    public void One_character_input_is_never_empty(string text)
    {
        Assert.NotEmpty(Bpe.Encode(text));
        Assert.NotEmpty(Unigram.Encode(text));
    }

    [Fact]
    public void Special_wrapping_and_empty_text()
    {
        Assert.Empty(Bpe.Encode(string.Empty));
        Assert.Empty(Bpe.Encode("  \t\n"));
        Assert.Equal([Kosmos2Tokenizer.BosId, Kosmos2Tokenizer.EosId], Bpe.Encode(" ", addSpecialTokens: true));
        var plain = Bpe.Encode("a dog");
        Assert.Equal([Kosmos2Tokenizer.BosId, .. plain, Kosmos2Tokenizer.EosId], Bpe.Encode("a dog", addSpecialTokens: true));
    }

    [Fact]
    public void Lstrip_tags_swallow_spaces_tabs_and_newlines_before_them()
    {
        var t = Bpe;
        var glued = t.Encode("dog<phrase>cat</phrase><object>");
        Assert.Equal(glued, t.Encode("dog \t\n <phrase>cat</phrase>\n<object>"));
        Assert.Equal([t.GroundingTokenId, .. t.Encode("An")], t.Encode("<grounding> An"));
        // Whitespace after a tag is not swallowed, but each segment gets its own ▁ prefix anyway.
        Assert.Equal(t.Encode("<grounding>An"), t.Encode("<grounding> An"));
    }

    [Fact]
    public void Look_alike_patch_tokens_are_plain_text()
    {
        var t = Bpe;
        var ids = t.Encode("<patch_index_1024>");
        Assert.True(ids.Length > 1);
        Assert.DoesNotContain(ids, id => id >= t.MaskId);
        Assert.Equal([t.PatchIndexId(512)], t.Encode("<patch_index_0512>"));
    }

    [Fact]
    public void A_run_of_unknown_characters_is_one_unk()
    {
        foreach (var t in new[] { Bpe, Unigram })
        {
            var ids = t.Encode("猫犬🐕");
            Assert.Single(ids, id => id == Kosmos2Tokenizer.UnkId);
            Assert.Equal(Kosmos2Tokenizer.UnkId, ids[^1]);
        }
    }

    [Fact]
    public void Decode_joins_added_tokens_without_spaces_and_is_not_the_inverse_of_encode()
    {
        var t = Bpe;
        var ids = t.Encode("x<patch_index_0000>y");
        Assert.Equal("x<patch_index_0000> y", t.Decode(ids));
        Assert.Equal("<grounding> An image of", t.Decode(t.Encode("<s><grounding>An image of</s>")));
        Assert.Equal("<s><grounding> An image of</s>", t.Decode(t.Encode("<s><grounding>An image of</s>"), skipSpecialTokens: false));
    }

    [Fact]
    public void Clean_up_applies_the_replacements_in_order()
    {
        var t = Bpe;
        // ("!" is not in the golden corpus, so it would come back as <unk> and be skipped.)
        var ids = t.Encode("a , b . c ? d");
        Assert.Equal("a, b. c? d", t.Decode(ids));
        Assert.Equal("a , b . c ? d", t.Decode(ids, cleanUpTokenizationSpaces: false));
    }

    [Fact]
    public void Load_without_json_files_uses_the_computed_layout()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(RepoPaths.GoldenModelDir, Kosmos2Tokenizer.ModelFileName), Path.Combine(dir.Path, Kosmos2Tokenizer.ModelFileName));
        var bare = Kosmos2Tokenizer.Load(dir.Path);
        const string Text = "<grounding> An image of<phrase> a snowman</phrase><object><patch_index_0044><patch_index_0863></object> <mask> x";
        Assert.Equal(Bpe.Encode(Text, addSpecialTokens: true), bare.Encode(Text, addSpecialTokens: true));
        Assert.Equal(Bpe.VocabSize, bare.VocabSize);
    }

    [Fact]
    public void Load_rejects_added_tokens_that_disagree_with_the_layout()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(RepoPaths.GoldenModelDir, Kosmos2Tokenizer.ModelFileName), Path.Combine(dir.Path, Kosmos2Tokenizer.ModelFileName));
        File.WriteAllText(Path.Combine(dir.Path, "added_tokens.json"), """{ "<image>": 1004 }""");
        Assert.Throws<InvalidDataException>(() => Kosmos2Tokenizer.Load(dir.Path));
    }

    [Fact]
    public void Load_fails_clearly_without_a_model()
    {
        using var dir = new TempDir();
        Assert.Throws<FileNotFoundException>(() => Kosmos2Tokenizer.Load(dir.Path));
    }

    /// <summary>A temporary folder removed on dispose.</summary>
    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("kosmos2-tok-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
