using System.Text.Json;
using Kosmos2.Processing.Prompts;

namespace Kosmos2.Processing.Tests.Prompts;

public sealed class PromptBuilderTests
{
    public static TheoryData<int> InsertCases() => GoldenJson.IndexData("bbox_cases.json", "insert_patch_index_tokens");

    public static TheoryData<int> InvalidCases() => GoldenJson.IndexData("bbox_cases.json", "invalid_bboxes");

    public static TheoryData<string> Cases() => GoldenJson.CaseData();

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(InsertCases))]
    public void Boxes_are_inserted_like_the_processor(int index)
    {
        var c = GoldenJson.Load("bbox_cases.json").GetProperty("insert_patch_index_tokens")[index];
        var boxes = ReferringBoxes.FromJson(c.GetProperty("bboxes"));
        var text = PromptBuilder.PreprocessText(c.GetProperty("text").GetString()!, boxes, includeImage: false);
        Assert.Equal(c.GetProperty("processed_text_without_image").GetString(), text);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(InvalidCases))]
    public void Invalid_boxes_are_rejected_with_the_reference_message(int index)
    {
        var c = GoldenJson.Load("bbox_cases.json").GetProperty("invalid_bboxes")[index];
        Assert.Equal("ValueError", c.GetProperty("raises").GetString());
        var ex = Assert.Throws<InvalidPromptException>(() =>
            PromptBuilder.BuildText(c.GetProperty("text").GetString()!, ReferringBoxes.FromJson(c.GetProperty("bboxes"))));
        Assert.Contains(c.GetProperty("message").GetString()!, ex.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<ArgumentException>(ex);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Cases))]
    public void Case_prompt_builds_its_tokenizer_input_text(string name)
    {
        var c = GoldenJson.Case(name);
        var text = PromptBuilder.BuildText(c.GetProperty("prompt").GetString()!, ReferringBoxes.FromJson(c.GetProperty("bboxes")));
        Assert.Equal(c.GetProperty("tokenizer_input_text").GetString(), text);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Cases))]
    public void Case_prompt_builds_its_ids_and_masks_with_a_fake_encoder(string name)
    {
        // Until Kosmos2Tokenizer lands: an encoder that returns the golden ids before placeholder replacement.
        var c = GoldenJson.Case(name);
        var expectedIds = c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var imageId = expectedIds[1];
        var tokenizerInput = c.GetProperty("tokenizer_input_text").GetString()!;
        int[] Encode(string text)
        {
            Assert.Equal(tokenizerInput, text);
            var ids = (int[])expectedIds.Clone();
            Array.Fill(ids, imageId, 2, 64);
            return ids;
        }

        var prompt = PromptBuilder.Build(c.GetProperty("prompt").GetString()!, ReferringBoxes.FromJson(c.GetProperty("bboxes")), Encode);

        Assert.Equal(expectedIds, prompt.InputIds);
        Assert.Equal(c.GetProperty("attention_mask").EnumerateArray().Select(e => e.GetInt32()), prompt.AttentionMask);
        Assert.Equal(c.GetProperty("image_embeds_position_mask").EnumerateArray().Select(e => e.GetInt32()), prompt.ImageEmbedsPositionMask);
        Assert.Equal(2, prompt.ImageOffset);
        Assert.Equal(Enumerable.Range(4, 64), prompt.InputIds.Skip(2).Take(64));
    }

    [Fact]
    public void Prompt_is_stripped_and_the_image_block_has_64_placeholders()
    {
        var text = PromptBuilder.BuildText("  <grounding>An image of \n", null);
        Assert.StartsWith("<s><image> <image> ", text, StringComparison.Ordinal);
        Assert.EndsWith(" </image> <grounding>An image of", text, StringComparison.Ordinal);
        Assert.Equal(65, text.Split("<image>").Length - 1);
    }

    [Theory]
    [InlineData("[[0, 0, 1, 1]]")]               // ints where floats are required
    [InlineData("[[0.1, 0.2, 0.3]]")]            // three numbers
    [InlineData("[[1.0, 2.0]]")]                 // floats where ints are required
    [InlineData("[[[1, 2], null]]")]             // None inside a list of boxes
    [InlineData("[\"0.1,0.2,0.3,0.4\"]")]       // a string
    [InlineData("[[[[0.1, 0.1, 0.2, 0.2]]]]")]   // nested too deep
    [InlineData("{\"box\": [0.1, 0.1, 0.2, 0.2]}")] // not a list
    [InlineData("[0.1, 0.1, 0.2, 0.2]")]         // a bare box: four entries that are numbers
    [InlineData("[[1, 2.5]]")]                   // mixed
    [InlineData("not json")]
    public void Malformed_box_json_is_rejected(string json)
    {
        var ex = Assert.ThrowsAny<InvalidPromptException>(() =>
            PromptBuilder.BuildText("<phrase>a</phrase>", ReferringBoxes.Parse(json)));
        Assert.NotEmpty(ex.Message);
    }

    [Theory]
    [InlineData("[[1024, 5]]", "out of range")]
    [InlineData("[[-1, 5]]", "out of range")]
    [InlineData("[[0.1, 0.1, 1.5, 0.9]]", "[0, 1]")]
    [InlineData("[[-0.1, 0.1, 0.5, 0.9]]", "[0, 1]")]
    public void Boxes_outside_the_grid_are_rejected(string json, string message)
    {
        var ex = Assert.Throws<InvalidPromptException>(() => PromptBuilder.BuildText("<phrase>a</phrase>", ReferringBoxes.Parse(json)));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Several_boxes_null_and_empty_entries()
    {
        var boxes = ReferringBoxes.Parse("[[[0.1, 0.1, 0.3, 0.3], [44, 863]], null, []]");
        var text = PromptBuilder.PreprocessText("<phrase>a</phrase><phrase>b</phrase> <phrase>c</phrase>", boxes, includeImage: false);
        Assert.Equal(
            "<phrase>a</phrase><object> <patch_index_0099> <patch_index_0297> </delimiter_of_multi_objects/> <patch_index_0044> <patch_index_0863> </object><phrase>b</phrase> <phrase>c</phrase>",
            text);
    }

    [Fact]
    public void Exponent_numbers_are_floats_as_in_python()
    {
        var boxes = ReferringBoxes.Parse("[[1e-1, 1E-1, 3e-1, 0.3]]")!;
        var box = Assert.IsType<CoordinateReferringBox>(Assert.Single(boxes.Phrases)![0]);
        Assert.Equal(0.1, box.Box.X1);
    }

    [Fact]
    public void Null_json_is_no_boxes()
    {
        Assert.Null(ReferringBoxes.FromJson(JsonDocument.Parse("null").RootElement));
        Assert.Equal("<phrase>a</phrase>", PromptBuilder.PreprocessText("<phrase>a</phrase>", ReferringBoxes.Parse("[]"), includeImage: false));
    }

    [Fact]
    public void An_encoder_that_adds_special_tokens_is_caught()
    {
        Assert.Throws<InvalidOperationException>(() => PromptBuilder.Build("x", null, _ => [0, 0, 5, 5, 5]));
    }
}
