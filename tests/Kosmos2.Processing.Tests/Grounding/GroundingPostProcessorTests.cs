using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Tests.Grounding;

public sealed class GroundingPostProcessorTests
{
    public static TheoryData<int> PostprocessCases() => GoldenJson.IndexData("postprocess_cases.json", "cases");

    public static TheoryData<string> Cases() => GoldenJson.CaseData();

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(PostprocessCases))]
    public void Postprocess_case_matches_reference(int index)
    {
        var c = GoldenJson.Load("postprocess_cases.json").GetProperty("cases")[index];
        var text = c.GetProperty("generated_text").GetString()!;

        Assert.Equal(c.GetProperty("caption_after_last_eoi").GetString(), GroundingPostProcessor.ExtractCaption(text));
        var result = GroundingPostProcessor.Process(text);
        Assert.Equal(c.GetProperty("clean_text").GetString(), result.CleanText);
        GoldenJson.AssertEntities(c.GetProperty("entities"), result.Entities);

        // The raw patch-index pairs as well (one raw match may give several phrase-less entities).
        var raw = c.GetProperty("raw_entities_patch_indices");
        var pairs = result.Entities.SelectMany(e => e.PatchBoxes).ToList();
        var expectedPairs = raw.EnumerateArray()
            .SelectMany(r => r.GetProperty("patch_index_pairs").EnumerateArray())
            .Select(p => (p[0].GetInt32(), p[1].GetInt32()))
            .ToList();
        Assert.Equal(expectedPairs, pairs);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Cases))]
    public void Case_generation_post_processes_to_its_clean_text_and_entities(string name)
    {
        var g = GoldenJson.Case(name).GetProperty("generation");
        var decoded = g.GetProperty("decoded_text").GetString()!;

        Assert.Equal(g.GetProperty("post_processed_caption").GetString(), GroundingPostProcessor.ExtractCaption(decoded));
        var result = GroundingPostProcessor.Process(decoded);
        Assert.Equal(g.GetProperty("clean_text").GetString(), result.CleanText);
        GoldenJson.AssertEntities(g.GetProperty("entities"), result.Entities);
    }

    [Fact]
    public void Blank_phrase_gives_start_after_end_as_hf()
    {
        var r = GroundingPostProcessor.Process("<grounding> A<phrase>   </phrase><object><patch_index_0002><patch_index_0099></object> blank phrase");
        var e = Assert.Single(r.Entities);
        Assert.Equal(("", 4, 1), (e.Phrase, e.SpanStart, e.SpanEnd));
        Assert.Equal("A    blank phrase", r.CleanText);
    }

    [Fact]
    public void Phrase_less_object_before_any_text_gets_a_negative_span_as_hf()
    {
        // leading_spaces of " A cat" is 1 and the object starts at clean index 0.
        var r = GroundingPostProcessor.Process("<grounding><object><patch_index_0001><patch_index_0002></object> A cat");
        var e = Assert.Single(r.Entities);
        Assert.Equal(("<patch_index_1><patch_index_2>", -1, -1), (e.Phrase, e.SpanStart, e.SpanEnd));
    }

    [Fact]
    public void Tags_do_not_span_newlines_and_unclosed_angle_brackets_stay()
    {
        Assert.Equal("a <b\nc> d", GroundingPostProcessor.Process("a <b\nc> d").CleanText);
        Assert.Equal("x < y", GroundingPostProcessor.Process("x < y").CleanText);
        Assert.Equal("xz", GroundingPostProcessor.Process("x<y>z").CleanText);
    }

    [Fact]
    public void Python_whitespace_includes_information_separators()
    {
        Assert.Equal("a", GroundingPostProcessor.Process("\u001f a \u001c").CleanText);
    }

    [Fact]
    public void Spans_count_code_points_for_astral_characters()
    {
        var r = GroundingPostProcessor.Process("😀😀<phrase> 🙂x</phrase><object><patch_index_0001><patch_index_0002></object>");
        var e = Assert.Single(r.Entities);
        Assert.Equal(("🙂x", 3, 5), (e.Phrase, e.SpanStart, e.SpanEnd));
    }
}
