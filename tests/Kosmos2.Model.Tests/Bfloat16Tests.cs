using Kosmos2.Testing;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// bfloat16 (the CPU serving dtype) against the float32 reference: reports greedy agreement and logit differences.
/// Bounds are loose on purpose (bf16 has 8 bits of mantissa); the computation is deterministic, so not flaky.
/// </summary>
[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class Bfloat16Tests(ITestOutputHelper output)
{
    [Fact]
    public void Bfloat16_model_stays_close_to_the_float32_reference()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        var cases = GoldenData.CaseNames();
        Assert.NotEmpty(cases);
        var agree = 0;
        var firstTokenAgree = 0;
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
            var promptDiff = GoldenData.MaxAbsDiff(model.Prefill(cache, 0, ids, 0, embeds, offset, allLogits: true).unsqueeze(0), tensors.Read("logits"));
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
            var same = tokens.SequenceEqual(expected);
            var prefix = tokens.Zip(expected).TakeWhile(p => p.First == p.Second).Count();
            agree += same ? 1 : 0;
            firstTokenAgree += tokens.Length > 0 && tokens[0] == expected[0] ? 1 : 0;
            maxPromptDiff = Math.Max(maxPromptDiff, promptDiff);
            maxStepDiff = Math.Max(maxStepDiff, stepDiff);
            output.WriteLine($"{name}: tokens {(same ? "equal" : $"differ after {prefix}/{expected.Length}")}, prompt logits {promptDiff:F4}, step logits while tokens agree {stepDiff:F4}");
        }
        output.WriteLine($"bf16: {agree}/{cases.Count} cases identical, first token {firstTokenAgree}/{cases.Count}, max prompt logit diff {maxPromptDiff:F4}, max step logit diff {maxStepDiff:F4}");

        Assert.True(maxPromptDiff < 1.0, $"prompt logits differ by {maxPromptDiff}");
    }
}
