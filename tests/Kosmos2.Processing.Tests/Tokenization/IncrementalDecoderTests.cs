using System.Text;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>Streaming decode must concatenate to exactly the whole-sequence decode.</summary>
[Trait("Category", "Golden")]
public sealed class IncrementalDecoderTests
{
    public static TheoryData<string, int, string> Cases => TokenizerGoldenData.Rows("cases");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Streams_golden_cases_like_decode(string file, int index, string label)
    {
        var c = TokenizerGoldenData.Root(file).GetProperty("cases")[index];
        var tokenizer = TokenizerGoldenData.TokenizerFor(file);
        var ids = TokenizerGoldenData.Ints(c.GetProperty("input_ids"));
        AssertStreamsLikeDecode(tokenizer, ids, label);
    }

    [Fact]
    public void Streams_random_sequences_like_decode()
    {
        var tokenizer = TokenizerGoldenData.TokenizerFor("tokenizer_cases.json");
        // Bias towards the pieces clean-up cares about so the held-back path is exercised.
        int[] interesting = [.. new[] { "▁.", ".", "▁", "'", "s", "▁'", "t", "n", "▁n", "re", "ve", "m", "?", "!", "," }
            .Select(tokenizer.TokenToId).Where(id => id != Kosmos2Tokenizer.UnkId)];
        var random = new Random(1234);
        for (var run = 0; run < 2000; run++)
        {
            var ids = new int[random.Next(0, 25)];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = random.Next(3) == 0 ? random.Next(tokenizer.VocabSize) : interesting[random.Next(interesting.Length)];
            }
            AssertStreamsLikeDecode(tokenizer, ids, $"run {run}");
        }
    }

    private static void AssertStreamsLikeDecode(Kosmos2Tokenizer tokenizer, int[] ids, string label)
    {
        foreach (var skip in new[] { true, false })
        {
            foreach (var cleanUp in new[] { true, false })
            {
                var decoder = tokenizer.CreateIncrementalDecoder(skip, cleanUp);
                var streamed = new StringBuilder();
                foreach (var id in ids)
                {
                    streamed.Append(decoder.Push(id));
                }
                streamed.Append(decoder.Flush());
                Assert.True(
                    tokenizer.Decode(ids, skip, cleanUp) == streamed.ToString(),
                    $"{label} skip={skip} cleanUp={cleanUp}: [{string.Join(", ", ids)}]");
            }
        }
    }
}
