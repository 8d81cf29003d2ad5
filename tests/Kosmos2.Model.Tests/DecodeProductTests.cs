using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// bfloat16 decode steps take the weight-major products (mv at 1 row, addmm(b, W, xT) up to 16 rows, fused q/k/v);
/// a long prefill takes nn.functional.linear. Both must give the same logits up to bf16 rounding.
/// </summary>
[Collection(GoldenModelCollection.Name)]
public sealed class DecodeProductTests(ITestOutputHelper output)
{
    [Fact]
    public void Bfloat16_decode_steps_match_a_linear_prefill_of_the_same_tokens()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        long[] tokens = [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25];
        const int Prefix = 4;
        const int Rows = 4;
        using var reference = model.CreateKvCache(1, tokens.Length);
        var expected = model.Prefill(reference, 0, tokens, allLogits: true); // [T, V] through linear (T > 16)

        using var cache = model.CreateKvCache(Rows, tokens.Length);
        int[] slots = [0, 1, 2, 3];
        foreach (var slot in slots)
        {
            model.Prefill(cache, slot, tokens.AsSpan(0, Prefix));
        }
        var single = 0.0;
        var batched = 0.0;
        for (var i = Prefix; i < tokens.Length; i++)
        {
            var one = model.DecodeStep(cache, [0], [tokens[i]], [i]); // rows = 1: mv
            var many = model.DecodeStep(cache, slots.AsSpan(1), [tokens[i], tokens[i], tokens[i]], [i, i, i]); // rows = 3: addmm
            single = Math.Max(single, GoldenData.MaxAbsDiff(one[0], expected[i]));
            batched = Math.Max(batched, GoldenData.MaxAbsDiff(many, expected[i].expand(3, -1)));
            Assert.Equal(expected[i].argmax().item<long>(), one[0].argmax().item<long>());
        }
        output.WriteLine($"max logit diff against the linear prefill: batch 1 {single:F4}, batch 3 {batched:F4}");
        Assert.True(single < 0.5, $"batch-1 decode logits differ by {single}");
        Assert.True(batched < 0.5, $"batched decode logits differ by {batched}");
    }
}
