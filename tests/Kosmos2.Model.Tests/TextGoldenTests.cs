using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class TextGoldenTests(GoldenModelFixture fixture, ITestOutputHelper output)
{
    private const double Tolerance = 1e-3;

    [Fact]
    public void Golden_cases_exist() => Assert.NotEmpty(GoldenData.CaseNames());

    [Theory]
    [MemberData(nameof(GoldenData.Cases), MemberType = typeof(GoldenData))]
    public void Prompt_hidden_states_and_logits_match_the_reference(string caseName)
    {
        using var scope = NewDisposeScope();
        var json = GoldenData.CaseJson(caseName);
        using var tensors = GoldenData.CaseTensors(caseName);
        var ids = GoldenData.Longs(json.GetProperty("input_ids"));
        var mask = GoldenData.Longs(json.GetProperty("image_embeds_position_mask"));
        var imageEmbeds = fixture.ImageEmbeds(GoldenData.ImageStem(json));
        var embedsDiff = GoldenData.MaxAbsDiff(imageEmbeds, tensors.Read("image_embeds"));
        Assert.True(embedsDiff < 1e-4, $"image embeds {embedsDiff}");

        using var cache = fixture.Model.CreateKvCache(1, ids.Length);
        var hidden = new List<Tensor>();
        var logits = fixture.Model.TextDecoder.Prefill(cache, 0, ids, 0, imageEmbeds,
            GoldenData.ImageOffset(mask, fixture.Model.Config.LatentQueryNum), allLogits: true, hiddenStates: hidden);

        var expectedHidden = tensors.Read("text_hidden_states"); // [layers+1, 1, L, D]
        Assert.Equal(expectedHidden.shape[0], hidden.Count);
        var hiddenDiff = Enumerable.Range(0, hidden.Count).Max(i => GoldenData.MaxAbsDiff(hidden[i], expectedHidden[i]));
        var logitsDiff = GoldenData.MaxAbsDiff(logits.unsqueeze(0), tensors.Read("logits"));
        output.WriteLine($"{caseName}: image embeds {embedsDiff:E2}, hidden {hiddenDiff:E2}, logits {logitsDiff:E2}");
        hidden.ForEach(h => h.Dispose());
        Assert.True(hiddenDiff < Tolerance, $"hidden states {hiddenDiff}");
        Assert.True(logitsDiff < Tolerance, $"logits {logitsDiff}");
    }

    [Theory]
    [MemberData(nameof(GoldenData.Cases), MemberType = typeof(GoldenData))]
    public void Cached_greedy_generation_reproduces_the_reference_tokens_and_step_logits(string caseName)
    {
        using var scope = NewDisposeScope();
        var json = GoldenData.CaseJson(caseName);
        using var tensors = GoldenData.CaseTensors(caseName);
        var ids = GoldenData.Longs(json.GetProperty("input_ids"));
        var mask = GoldenData.Longs(json.GetProperty("image_embeds_position_mask"));
        var generation = json.GetProperty("generation");
        var expected = GoldenData.Longs(generation.GetProperty("new_token_ids"));
        var maxNew = generation.GetProperty("max_new_tokens").GetInt32();
        var stepLogits = tensors.Read("step_logits"); // [steps, V]

        var stepDiff = 0.0;
        var tokens = Kosmos2GreedyGenerator.Generate(fixture.Model, ids, fixture.ImageEmbeds(GoldenData.ImageStem(json)), maxNew,
            GoldenData.ImageOffset(mask, fixture.Model.Config.LatentQueryNum),
            (step, logits) => stepDiff = Math.Max(stepDiff, GoldenData.MaxAbsDiff(logits, stepLogits[step])));

        output.WriteLine($"{caseName}: {tokens.Length} tokens, step logits max diff {stepDiff:E2}");
        Assert.Equal(expected, tokens);
        Assert.True(stepDiff < Tolerance, $"step logits {stepDiff}");
    }

    [Theory]
    [MemberData(nameof(GoldenData.Cases), MemberType = typeof(GoldenData))]
    public void Chunked_prefill_gives_the_same_logits_as_one_prefill(string caseName)
    {
        using var scope = NewDisposeScope();
        var json = GoldenData.CaseJson(caseName);
        using var tensors = GoldenData.CaseTensors(caseName);
        var ids = GoldenData.Longs(json.GetProperty("input_ids"));
        var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), fixture.Model.Config.LatentQueryNum);
        var image = fixture.ImageEmbeds(GoldenData.ImageStem(json));
        var expected = tensors.Read("logits")[0]; // [L, V]
        using var cache = fixture.Model.CreateKvCache(3, ids.Length + 4);

        // Chunks of 5, 37 and the rest: the image span (2..65) is cut twice.
        var parts = new List<Tensor>();
        var start = 0;
        foreach (var size in new[] { 5, 37, ids.Length - 42 })
        {
            parts.Add(fixture.Model.TextDecoder.Prefill(cache, 2, ids.AsSpan(start, size), start, image, offset, allLogits: true));
            start += size;
        }
        var diff = GoldenData.MaxAbsDiff(torch.cat(parts, 0), expected);

        output.WriteLine($"{caseName}: chunked prefill logits max diff {diff:E2}");
        Assert.True(diff < Tolerance, $"chunked logits {diff}");
        Assert.Equal(ids.Length, cache.Length(2));
    }
}
