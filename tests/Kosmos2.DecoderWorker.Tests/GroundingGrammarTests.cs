using System.Text.Json;
using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>The grounding state machine, transition by transition, on the golden checkpoint's vocabulary.</summary>
public sealed class GroundingGrammarTests
{
    private const int Plenty = 1000;
    private static readonly Kosmos2Tokenizer Tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
    private static readonly GroundingVocabulary Vocab = GroundingVocabulary.FromVocabSize(ConfigVocabSize());

    private static int Patch(int n) => Tokenizer.PatchIndexId(n);

    private static int Piece => Tokenizer.Encode("a")[0];

    [Fact]
    public void Ids_derived_from_the_config_vocabulary_size_are_the_tokenizers()
    {
        Assert.Equal(Tokenizer.VocabSize, Vocab.VocabSize);
        Assert.Equal(Tokenizer.PhraseStartId, Vocab.PhraseStartId);
        Assert.Equal(Tokenizer.PhraseEndId, Vocab.PhraseEndId);
        Assert.Equal(Tokenizer.ObjectStartId, Vocab.ObjectStartId);
        Assert.Equal(Tokenizer.ObjectEndId, Vocab.ObjectEndId);
        Assert.Equal(Tokenizer.DelimiterId, Vocab.DelimiterId);
        Assert.Equal(Tokenizer.ImageEndTokenId, Vocab.ImageEndId);
        Assert.Equal(Tokenizer.MaskId, Vocab.MaskId);
        Assert.Equal(Tokenizer.FirstPatchIndexId, Vocab.FirstPatchId);
        Assert.Equal(Kosmos2Tokenizer.EosId, GroundingVocabulary.EosId);
        Assert.Equal("</delimiter_of_multi_objects/>", Tokenizer.IdToToken(Vocab.DelimiterId));
        Assert.Equal("<patch_index_1023>", Tokenizer.IdToToken(Vocab.FirstPatchId + GroundingVocabulary.PatchCount - 1));
    }

    [Fact]
    public void Text_allows_everything_but_patches_and_closing_tags()
    {
        var g = new GroundingGrammar(Vocab);
        var allowed = Allowed(g, Plenty);
        Assert.Equal(Vocab.VocabSize - GroundingVocabulary.PatchCount - 3, allowed.Count);
        Assert.Contains(GroundingVocabulary.EosId, allowed);
        Assert.Contains(Vocab.PhraseStartId, allowed);
        Assert.Contains(Vocab.ObjectStartId, allowed); // a phrase-less object is well-formed
        Assert.DoesNotContain(Vocab.PhraseEndId, allowed);
        Assert.DoesNotContain(Vocab.ObjectEndId, allowed);
        Assert.DoesNotContain(Vocab.DelimiterId, allowed);
        Assert.DoesNotContain(Patch(0), allowed);

        Advance(g, Piece, Patch(5), Vocab.PhraseEndId); // stray tokens of a prompt leave running text as it is
        Assert.Equal(GroundingState.Text, g.State);
    }

    [Fact]
    public void An_open_phrase_takes_text_then_its_close_and_never_nests_or_ends()
    {
        var g = new GroundingGrammar(Vocab);
        g.Advance(Vocab.PhraseStartId);
        Assert.Equal(GroundingState.PhraseOpen, g.State);
        var open = Allowed(g, Plenty);
        Assert.Equal(Vocab.MaskId - GroundingVocabulary.FirstPieceId, open.Count); // pieces only: the reference needs a character
        Assert.All(open, id => Assert.True(Vocab.IsPiece(id)));

        g.Advance(Piece);
        Assert.Equal(GroundingState.PhraseText, g.State);
        var inside = Allowed(g, Plenty);
        Assert.Equal(open.Count + 1, inside.Count);
        Assert.Contains(Vocab.PhraseEndId, inside);
        Assert.DoesNotContain(Vocab.PhraseStartId, inside);
        Assert.DoesNotContain(GroundingVocabulary.EosId, inside);
        Assert.DoesNotContain(Vocab.ObjectStartId, inside);
        Assert.DoesNotContain(Vocab.ImageEndId, inside);

        g.Advance(Vocab.PhraseEndId);
        Assert.Equal(GroundingState.AfterPhrase, g.State);
        Assert.Equal([Vocab.ObjectStartId], Allowed(g, Plenty));
    }

    [Fact]
    public void An_object_takes_ordered_boxes_joined_by_delimiters_then_closes()
    {
        var g = new GroundingGrammar(Vocab);
        Advance(g, Vocab.PhraseStartId, Piece, Vocab.PhraseEndId, Vocab.ObjectStartId);
        Assert.Equal(GroundingState.ObjectOpen, g.State);
        Assert.Equal(Enumerable.Range(Vocab.FirstPatchId, GroundingVocabulary.PatchCount), Allowed(g, Plenty));

        g.Advance(Patch(33)); // row 1, column 1
        Assert.Equal(GroundingState.FirstPatch, g.State);
        Assert.Equal(33, g.TopLeft);
        Assert.Equal(31 * 31, Allowed(g, Plenty).Count);

        g.Advance(Patch(100));
        Assert.Equal(GroundingState.SecondPatch, g.State);
        Assert.Equal([Vocab.ObjectEndId, Vocab.DelimiterId], Allowed(g, Plenty));

        Advance(g, Vocab.DelimiterId);
        Assert.Equal(GroundingState.ObjectOpen, g.State); // a second box of the same phrase
        Advance(g, Patch(500), Patch(500)); // one cell: top-left = bottom-right is a box
        Assert.Equal(GroundingState.SecondPatch, g.State);
        g.Advance(Vocab.ObjectEndId);
        Assert.Equal(GroundingState.Text, g.State);
        Assert.Contains(GroundingVocabulary.EosId, Allowed(g, Plenty));
    }

    [Theory]
    [InlineData(0, 0, 0)] // top-left corner: the whole grid
    [InlineData(31, 0, 31)] // top-right: column 31 only
    [InlineData(992, 31, 0)] // bottom-left: row 31 only
    [InlineData(1023, 31, 31)] // bottom-right: itself only
    [InlineData(500, 15, 20)]
    public void The_second_cell_is_never_above_or_left_of_the_first_even_at_the_grid_edges(int topLeft, int row, int column)
    {
        var g = new GroundingGrammar(Vocab);
        Advance(g, Vocab.ObjectStartId, Patch(topLeft));
        var allowed = Allowed(g, Plenty);
        var side = GroundingVocabulary.GridSide;
        var expected = Enumerable.Range(0, GroundingVocabulary.PatchCount).Where(n => n / side >= row && n % side >= column).Select(Patch).ToList();
        Assert.Equal(expected, allowed);
        Assert.Equal((side - row) * (side - column), allowed.Count);
        Assert.Contains(Patch(topLeft), allowed);
    }

    [Fact]
    public void The_budget_closes_what_is_open_before_max_new_tokens_runs_out()
    {
        var g = new GroundingGrammar(Vocab);
        Assert.DoesNotContain(Vocab.PhraseStartId, Allowed(g, 6)); // a phrase needs 6 tokens after <phrase>
        Assert.Contains(Vocab.PhraseStartId, Allowed(g, 7));
        Assert.DoesNotContain(Vocab.ObjectStartId, Allowed(g, 3));
        Assert.Contains(Vocab.ObjectStartId, Allowed(g, 4));

        Advance(g, Vocab.PhraseStartId, Piece);
        Assert.Equal([Vocab.PhraseEndId], Allowed(g, 5));
        Assert.Contains(Piece, Allowed(g, 6));

        Advance(g, Vocab.PhraseEndId, Vocab.ObjectStartId, Patch(0), Patch(1));
        Assert.Equal([Vocab.ObjectEndId], Allowed(g, 3)); // another box would not fit
        Assert.Equal([Vocab.ObjectEndId, Vocab.DelimiterId], Allowed(g, 4));

        var tight = new GroundingGrammar(Vocab); // a prompt that leaves too little room: the grammar still holds
        Advance(tight, Vocab.PhraseStartId, Piece, Vocab.PhraseEndId);
        Assert.Equal([Vocab.ObjectStartId], Allowed(tight, 1));
    }

    [Fact]
    public void The_prompts_tail_sets_the_starting_state()
    {
        Assert.Equal(GroundingState.AfterPhrase, FromPrompt("<grounding><phrase> a red circle</phrase>").State);
        Assert.Equal(GroundingState.Text, FromPrompt("<grounding><phrase> It</phrase><object><patch_index_0291><patch_index_0786></object> is").State);
        Assert.Equal(GroundingState.PhraseText, FromPrompt("<grounding> A<phrase> dog").State);
        Assert.Equal(GroundingState.PhraseOpen, FromPrompt("<grounding> A<phrase>").State);
        var box = FromPrompt("<grounding><phrase> It</phrase><object><patch_index_0291>");
        Assert.Equal((GroundingState.FirstPatch, 291), (box.State, box.TopLeft));
        Assert.Equal(GroundingState.Text, FromPrompt("<phrase> a</phrase></image><grounding>").State); // </image> starts a new caption
    }

    [Theory]
    [InlineData(new[] { "<phrase>", "piece", "<phrase>" }, GroundingState.PhraseOpen)] // a second <phrase> restarts it
    [InlineData(new[] { "<phrase>", "piece", "<object>" }, GroundingState.ObjectOpen)] // the phrase is lost, the object stands alone
    [InlineData(new[] { "<phrase>", "piece", "patch" }, GroundingState.Text)]
    [InlineData(new[] { "<phrase>", "piece", "</phrase>", "piece" }, GroundingState.Text)]
    [InlineData(new[] { "<object>", "piece" }, GroundingState.Text)]
    [InlineData(new[] { "<object>", "patch", "</object>" }, GroundingState.Text)] // one cell only
    [InlineData(new[] { "<object>", "patch", "patch", "patch" }, GroundingState.Text)]
    [InlineData(new[] { "<object>", "patch", "patch", "</delimiter_of_multi_objects/>", "</object>" }, GroundingState.Text)]
    [InlineData(new[] { "<object>", "patch", "</image>" }, GroundingState.Text)]
    public void A_prompt_that_breaks_the_form_resyncs_on_what_its_last_tokens_open(string[] tokens, GroundingState expected)
    {
        var g = new GroundingGrammar(Vocab);
        g.Observe(tokens.Select(t => t switch
        {
            "piece" => Piece,
            "patch" => Patch(40),
            _ => Tokenizer.TokenToId(t),
        }).ToArray());
        Assert.Equal(expected, g.State);
    }

    [Fact]
    public void The_bulk_mask_refuses_exactly_what_the_per_token_rule_refuses_in_every_state()
    {
        var random = new Random(19);
        List<int[]> prefixes =
        [
            [],
            [Vocab.PhraseStartId],
            [Vocab.PhraseStartId, Piece],
            [Vocab.PhraseStartId, Piece, Vocab.PhraseEndId],
            [Vocab.ObjectStartId],
            [Vocab.ObjectStartId, Patch(0), Patch(1), Vocab.DelimiterId],
            [Vocab.ObjectStartId, Patch(0), Patch(1)],
        ];
        prefixes.AddRange(Enumerable.Range(0, 12).Select(_ => new[] { Vocab.ObjectStartId, Patch(random.Next(GroundingVocabulary.PatchCount)) }));
        foreach (var prefix in prefixes)
        {
            foreach (var remaining in new[] { 1, 2, 3, 4, 5, 6, 7, Plenty })
            {
                var g = new GroundingGrammar(Vocab);
                Advance(g, prefix);
                var logits = new float[Vocab.VocabSize];
                for (var i = 0; i < logits.Length; i++)
                {
                    logits[i] = (float)random.NextDouble();
                }
                g.Mask(logits, remaining);
                for (var id = 0; id < logits.Length; id++)
                {
                    Assert.True(g.IsAllowed(id, remaining) == !float.IsNegativeInfinity(logits[id]),
                        $"{g.State} (top-left {g.TopLeft}), remaining {remaining}: id {id} ({Tokenizer.IdToToken(id)}) mask and rule disagree");
                }
                Assert.Contains(logits, v => !float.IsNegativeInfinity(v)); // never a dead end
            }
        }
    }

    private static GroundingGrammar FromPrompt(string prompt)
    {
        var g = new GroundingGrammar(Vocab);
        g.Observe(Tokenizer.Encode(prompt));
        return g;
    }

    private static void Advance(GroundingGrammar g, params int[] ids) => g.Observe(ids);

    private static List<int> Allowed(GroundingGrammar g, int remaining) =>
        Enumerable.Range(0, Vocab.VocabSize).Where(id => g.IsAllowed(id, remaining)).ToList();

    private static int ConfigVocabSize()
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.GoldenModelDir, "config.json")));
        return config.RootElement.GetProperty("text_config").GetProperty("vocab_size").GetInt32();
    }
}
