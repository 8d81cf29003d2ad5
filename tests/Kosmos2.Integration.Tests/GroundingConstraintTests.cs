using Grpc.Core;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// The grounding constraint and log-probabilities end to end (gateway, both workers, golden checkpoint): with the
/// constraint every generated patch token ends up in an entity's box, and each box's confidence is the mean of its
/// two patch tokens' log-probabilities as streamed.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class GroundingConstraintTests(ClusterFixture fixture)
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Every_golden_prompt_with_the_constraint_puts_every_generated_patch_token_in_a_box_with_its_confidence()
    {
        var cases = GoldenCase.All();
        Assert.NotEmpty(cases);
        foreach (var golden in cases)
        {
            var request = golden.Request();
            request.Sampling = new SamplingParameters { ConstrainGrounding = true, ReturnLogprobs = true, TopLogprobs = 2 };

            using var call = fixture.Client.Generate(request, ClusterFixture.TenantA);
            var streamed = new List<TokenLogprob>();
            GenerateResult? result = null;
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                streamed.AddRange(message.Delta?.Logprobs ?? []);
                result ??= message.Result;
            }

            Assert.NotNull(result);
            Assert.Equal(result.TokenIds, streamed.Select(t => t.TokenId));
            Assert.Equal(streamed, result.TokenLogprobs);
            Assert.All(streamed, t => Assert.True(t.Logprob <= 0 && float.IsFinite(t.Logprob), $"{golden.Name}: {t}"));
            // Two alternatives, fewer only where the constraint left fewer tokens possible; the best is at least the pick.
            Assert.All(streamed, t => Assert.True(t.Top.Count is 1 or 2 && t.Top[0].Logprob >= t.Logprob, $"{golden.Name}: {t}"));

            // Patch tokens in generation order, and the boxes that carry a confidence (the generated ones), in entity order.
            var patches = streamed.Where(t => t.Token.StartsWith("<patch_index_", StringComparison.Ordinal)).ToList();
            var boxes = result.Entities.SelectMany(e => e.Boxes).Where(b => b.HasMeanLogprob).ToList();
            Assert.True(patches.Count == 2 * boxes.Count, $"{golden.Name}: {patches.Count} generated patch tokens, {boxes.Count} generated boxes: {result.RawText}");
            for (var b = 0; b < boxes.Count; b++)
            {
                Assert.Equal(patches[2 * b].Token, $"<patch_index_{boxes[b].PatchTopLeft:D4}>");
                Assert.Equal(patches[(2 * b) + 1].Token, $"<patch_index_{boxes[b].PatchBottomRight:D4}>");
                Assert.Equal((patches[2 * b].Logprob + patches[(2 * b) + 1].Logprob) / 2, boxes[b].MeanLogprob, 6);
            }
        }
    }
}
