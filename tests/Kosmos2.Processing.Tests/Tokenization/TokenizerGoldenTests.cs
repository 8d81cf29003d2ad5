using System.Text.Json;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>Every case of every tokenizer golden file: ids, tokens and all decode variants the file carries.</summary>
[Trait("Category", "Golden")]
public sealed class TokenizerGoldenTests
{
    public static TheoryData<string, int, string> Cases => TokenizerGoldenData.Rows("cases");

    public static TheoryData<string, int, string> PromptCases => TokenizerGoldenData.Rows("prompt_cases");

    [Fact]
    public void Golden_tokenizer_case_files_are_found()
    {
        var files = TokenizerGoldenData.CaseFiles();
        Assert.Contains("tokenizer_cases.json", files);
        Assert.NotEmpty(Cases);
        foreach (var file in files)
        {
            Assert.NotEmpty(TokenizerGoldenData.Root(file).GetProperty("cases").EnumerateArray());
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_matches_golden(string file, int index, string label)
    {
        var c = TokenizerGoldenData.Root(file).GetProperty("cases")[index];
        var tokenizer = TokenizerGoldenData.TokenizerFor(file);
        var text = c.GetProperty("text").GetString()!;
        var addSpecial = c.GetProperty("add_special_tokens").GetBoolean();
        var expectedIds = TokenizerGoldenData.Ints(c.GetProperty("input_ids"));

        var ids = tokenizer.Encode(text, addSpecial);

        Assert.True(expectedIds.SequenceEqual(ids), $"{label}: ids [{string.Join(", ", ids)}], expected [{string.Join(", ", expectedIds)}]");
        if (c.TryGetProperty("tokens", out var tokens))
        {
            Assert.Equal(TokenizerGoldenData.Strings(tokens), ids.Select(tokenizer.IdToToken));
        }
        AssertDecode(c, "decoded_skip_special", tokenizer.Decode(expectedIds, skipSpecialTokens: true, cleanUpTokenizationSpaces: true));
        AssertDecode(c, "decoded_keep_special", tokenizer.Decode(expectedIds, skipSpecialTokens: false, cleanUpTokenizationSpaces: true));
        AssertDecode(c, "decoded_skip_special_no_cleanup", tokenizer.Decode(expectedIds, skipSpecialTokens: true, cleanUpTokenizationSpaces: false));
        AssertDecode(c, "decoded_keep_special_no_cleanup", tokenizer.Decode(expectedIds, skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
    }

    /// <summary>
    /// Processor calls: the tokenizer part encodes <c>tokenizer_input_text</c> (already holding the literal <c>&lt;s&gt;</c>)
    /// without specials; the processor then overwrites indices 2..65 (64 <c>&lt;image&gt;</c> placeholders) with ids 4..67.
    /// </summary>
    [Theory]
    [MemberData(nameof(PromptCases))]
    public void Prompt_case_matches_golden(string file, int index, string label)
    {
        const int PlaceholderStart = 2;
        const int PlaceholderCount = 64;
        const int FirstPlaceholderId = 4;
        var c = TokenizerGoldenData.Root(file).GetProperty("prompt_cases")[index];
        var tokenizer = TokenizerGoldenData.TokenizerFor(file);

        var ids = tokenizer.Encode(c.GetProperty("tokenizer_input_text").GetString()!, addSpecialTokens: false);

        Assert.Equal(Kosmos2Tokenizer.BosId, ids[0]);
        Assert.All(ids.Skip(1).Take(1 + PlaceholderCount), id => Assert.Equal(tokenizer.ImageTokenId, id));
        Assert.Equal(tokenizer.ImageEndTokenId, ids[PlaceholderStart + PlaceholderCount]);
        for (var i = 0; i < PlaceholderCount; i++)
        {
            ids[PlaceholderStart + i] = FirstPlaceholderId + i;
        }
        var expectedIds = TokenizerGoldenData.Ints(c.GetProperty("input_ids"));
        Assert.True(expectedIds.SequenceEqual(ids), $"{label}: ids [{string.Join(", ", ids)}], expected [{string.Join(", ", expectedIds)}]");
        Assert.Equal(TokenizerGoldenData.Strings(c.GetProperty("input_tokens")), ids.Select(tokenizer.IdToToken));
        if (c.TryGetProperty("attention_mask", out var mask))
        {
            Assert.Equal(ids.Length, mask.GetArrayLength());
        }
    }

    private static void AssertDecode(JsonElement c, string property, string actual)
    {
        if (c.TryGetProperty(property, out var expected))
        {
            Assert.Equal(expected.GetString(), actual);
        }
    }
}
