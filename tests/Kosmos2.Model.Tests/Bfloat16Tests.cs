using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// bfloat16 (the CPU serving dtype) against the float32 reference: reports greedy agreement and logit differences, and
/// asserts only what holds for any weights. bf16 keeps 8 bits of mantissa (a relative step of 2⁻⁸ ≈ 0.4%), so its logits
/// may move by a few percent of their spread, and greedy picks may flip where the reference's top two are close. The
/// checks are scaled by each case's own float32 logits: the error is bounded relative to the logits' spread, and the
/// first token must agree on every case whose float32 top-1/top-2 margin is over twice bf16's measured error there.
/// </summary>
[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class Bfloat16Tests(ITestOutputHelper output)
{
    /// <param name="kernels"><c>torch</c>: libtorch runs every product; <c>native</c>: the vision encoder's and the
    /// decoder's products (and the decoder's attention) run on the best kernels this CPU has, as the workers serve them.</param>
    [Theory]
    [InlineData("torch")]
    [InlineData("native")]
    public void Bfloat16_model_stays_close_to_the_float32_reference(string kernels)
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        var native = kernels == "native" ? Kernels.Bf16Kernels.Best() : null;
        model.UseVisionKernels(native);
        model.TextDecoder.UseKernels(native);
        output.WriteLine($"kernels: {native?.ToString() ?? "torch"}");
        var cases = GoldenData.CaseNames();
        Assert.NotEmpty(cases);
        var agree = 0;
        var firstTokenAgree = 0;
        var clearMarginCases = 0;
        var maxPromptDiff = 0.0;
        var maxStepDiff = 0.0;
        foreach (var name in cases)
        {
            var json = GoldenData.CaseJson(name);
            using var tensors = GoldenData.CaseTensors(name);
            using var image = GoldenData.ImageTensors(GoldenData.ImageStem(json));
            var ids = GoldenData.Longs(json.GetProperty("input_ids"));
            var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), model.Config.LatentQueryNum);
            var generation = json.GetProperty("generation");
            var expected = GoldenData.Longs(generation.GetProperty("new_token_ids"));
            var embeds = model.EncodeImages(image.Read("pixel_values"));
            using var cache = model.CreateKvCache(1, ids.Length);
            var referenceLogits = tensors.Read("logits");
            var promptLogits = model.Prefill(cache, 0, ids, 0, embeds, offset, allLogits: true).unsqueeze(0);
            var promptDiff = GoldenData.MaxAbsDiff(promptLogits, referenceLogits);
            var lastDiff = GoldenData.MaxAbsDiff(promptLogits[0, -1], referenceLogits[0, -1]);
            var spread = (referenceLogits.max() - referenceLogits.min()).item<float>();
            Assert.True(promptDiff < RelativeErrorBound * spread,
                $"{name}: bf16 prompt logits differ by {promptDiff:F4}, over {RelativeErrorBound:P0} of the float32 logits' spread {spread:F3}");
            var stepLogits = tensors.Read("step_logits");
            var stepDiff = 0.0;
            var agreeing = true; // step logits are comparable only while every earlier token matched
            var tokens = Kosmos2GreedyGenerator.Generate(model, ids, embeds, generation.GetProperty("max_new_tokens").GetInt32(), offset,
                (step, logits) =>
                {
                    if (agreeing && step < stepLogits.shape[0])
                    {
                        stepDiff = Math.Max(stepDiff, GoldenData.MaxAbsDiff(logits, stepLogits[step]));
                        agreeing = logits.argmax().item<long>() == expected[step];
                    }
                });
            var top2 = stepLogits[0].topk(2).values;
            var margin = (top2[0] - top2[1]).item<float>();
            // A float32 lead larger than twice bf16's error at that position cannot be overturned by that error.
            if (expected.Length > 0 && margin > 2 * lastDiff)
            {
                clearMarginCases++;
                Assert.True(tokens.Length > 0 && tokens[0] == expected[0],
                    $"{name}: float32's first token {expected[0]} leads by {margin:F3}, over twice bf16's error there ({lastDiff:F3}), yet bf16 picked {(tokens.Length > 0 ? tokens[0] : -1)}");
            }
            var same = tokens.SequenceEqual(expected);
            var prefix = tokens.Zip(expected).TakeWhile(p => p.First == p.Second).Count();
            agree += same ? 1 : 0;
            firstTokenAgree += tokens.Length > 0 && tokens[0] == expected[0] ? 1 : 0;
            maxPromptDiff = Math.Max(maxPromptDiff, promptDiff);
            maxStepDiff = Math.Max(maxStepDiff, stepDiff);
            output.WriteLine($"{name}: tokens {(same ? "equal" : $"differ after {prefix}/{expected.Length}")}, prompt logits {promptDiff:F4}, step logits while tokens agree {stepDiff:F4}");
        }
        output.WriteLine($"bf16: {agree}/{cases.Count} cases identical, first token {firstTokenAgree}/{cases.Count} " +
                         $"({clearMarginCases} with a clear float32 margin, all agreeing), max prompt logit diff {maxPromptDiff:F4}, max step logit diff {maxStepDiff:F4}");
    }

    /// <summary>bf16 logits stay within this share of the float32 logits' spread (max − min): ~13 relative bf16 steps.</summary>
    private const double RelativeErrorBound = 0.05;

}
