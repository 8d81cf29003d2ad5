using System.Text.Json;
using Kosmos2.Model.Text;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// Left-padded batches: each row's greedy tokens equal the reference, both with HF's real left padding and with the
/// serving layout (each row unpadded in its own KV slot, batched decode steps, finished rows leaving).
/// </summary>
[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class BatchGoldenTests(GoldenModelFixture fixture, ITestOutputHelper output)
{
    private const double Tolerance = 1e-3;

    [Fact]
    public void Golden_batches_exist() => Assert.NotEmpty(GoldenData.BatchNames());

    [Theory]
    [MemberData(nameof(GoldenData.Batches), MemberType = typeof(GoldenData))]
    public void Left_padded_batch_as_hf_runs_it_reproduces_every_row(string batchName)
    {
        using var scope = NewDisposeScope();
        var json = GoldenData.BatchJson(batchName);
        using var tensors = GoldenData.BatchTensors(batchName);
        var rows = json.GetProperty("rows").EnumerateArray().ToList();
        var b = rows.Count;
        var ids = rows.Select(r => GoldenData.Longs(r.GetProperty("input_ids"))).ToArray();
        var l = ids[0].Length;
        var attention = rows.Select(r => GoldenData.Longs(r.GetProperty("attention_mask"))).ToList();
        var imageMask = rows.SelectMany(r => GoldenData.Longs(r.GetProperty("image_embeds_position_mask"))).ToArray();
        var positionIds = rows.SelectMany(r => GoldenData.Longs(r.GetProperty("position_ids"))).ToArray();
        var expected = rows.Select(r => GoldenData.Longs(r.GetProperty("generation").GetProperty("new_token_ids"))).ToArray();
        var maxNew = json.GetProperty("max_new_tokens").GetInt32();
        var images = torch.cat(rows.Select(r => fixture.ImageEmbeds(GoldenData.ImageStem(r))).ToList(), 0); // [B, 64, D]
        var expectedLogits = tensors.Read("logits"); // [B, L, V]
        var stepLogits = tensors.Read("step_logits"); // [steps, B, V]
        using var cache = fixture.Model.CreateKvCache(b, l + maxNew);
        var slots = Enumerable.Range(0, b).Select(i => (long)i).ToArray();

        var logits = fixture.Model.TextDecoder.Forward(cache, new TextForwardInput(slots, new long[b],
            torch.tensor(ids.SelectMany(x => x).ToArray(), [b, l]), torch.tensor(positionIds, [b, l]))
        {
            AttentionMask = torch.tensor(attention.SelectMany(x => x).ToArray(), [b, l]),
            ImageEmbeds = images,
            ImageEmbedsPositionMask = torch.tensor(imageMask, [b, l]),
            Logits = LogitsMode.All,
        })!;
        var promptDiff = 0.0;
        for (var r = 0; r < b; r++)
        {
            var real = attention[r].Count(a => a == 0); // left pad count: compare real positions only
            promptDiff = Math.Max(promptDiff, GoldenData.MaxAbsDiff(logits[r].narrow(0, real, l - real), expectedLogits[r].narrow(0, real, l - real)));
        }

        // Decode exactly as HF: every row steps; finished rows are fed <pad> (position 1, mask 1).
        var sequences = ids.Select(x => x.ToList()).ToArray();
        var mask = attention.Select(x => x.ToList()).ToArray();
        var finished = new bool[b];
        var generated = Enumerable.Range(0, b).Select(_ => new List<long>()).ToArray();
        var stepDiff = 0.0;
        var current = logits.select(1, -1); // [B, V]
        var stepPositions = json.GetProperty("decode_step_position_ids").EnumerateArray().Select(GoldenData.Longs).ToList();
        for (var step = 0; step < maxNew && !finished.All(f => f); step++)
        {
            var next = new long[b];
            for (var r = 0; r < b; r++)
            {
                if (!finished[r])
                {
                    stepDiff = Math.Max(stepDiff, GoldenData.MaxAbsDiff(current[r], stepLogits[step][r]));
                }
                next[r] = finished[r] ? 1 : current[r].argmax().item<long>();
                generated[r].Add(next[r]);
                finished[r] |= next[r] == 2;
                sequences[r].Add(next[r]);
                mask[r].Add(1);
            }
            if (finished.All(f => f) || step + 1 == maxNew)
            {
                break;
            }
            // HF position: 1 + number of non-pad ids so far, 1 for a pad.
            var pos = sequences.Select(s => s[^1] == 1 ? 1L : 1 + s.Count(t => t != 1)).ToArray();
            Assert.Equal(stepPositions[step], pos);
            var start = l + step;
            current = fixture.Model.TextDecoder.Forward(cache, new TextForwardInput(slots, Enumerable.Repeat((long)start, b).ToArray(),
                torch.tensor(next, [b, 1]), torch.tensor(pos, [b, 1]))
            {
                AttentionMask = torch.tensor(mask.SelectMany(x => x).ToArray(), [b, start + 1]),
            })!;
        }

        output.WriteLine($"{batchName} (HF left padding): prompt logits {promptDiff:E2}, step logits {stepDiff:E2}");
        for (var r = 0; r < b; r++)
        {
            Assert.Equal(expected[r], generated[r].ToArray());
        }
        Assert.True(promptDiff < Tolerance, $"prompt logits {promptDiff}");
        Assert.True(stepDiff < Tolerance, $"step logits {stepDiff}");
    }

    [Theory]
    [MemberData(nameof(GoldenData.Batches), MemberType = typeof(GoldenData))]
    public void Serving_layout_each_row_in_its_own_slot_reproduces_every_row(string batchName)
    {
        using var scope = NewDisposeScope();
        var json = GoldenData.BatchJson(batchName);
        using var tensors = GoldenData.BatchTensors(batchName);
        var rows = json.GetProperty("rows").EnumerateArray().ToList();
        var b = rows.Count;
        var maxNew = json.GetProperty("max_new_tokens").GetInt32();
        var stepLogits = tensors.Read("step_logits"); // [steps, B, V]
        var latent = fixture.Model.Config.LatentQueryNum;
        // Unpadded prompts, in slots scattered over a larger pool (slot of row r = 2·(b−1−r): not consecutive, reversed).
        var prompts = rows.Select(r => GoldenData.Longs(r.GetProperty("input_ids")).Where((_, i) =>
            GoldenData.Longs(r.GetProperty("attention_mask"))[i] == 1).ToArray()).ToArray();
        var expected = rows.Select(r => GoldenData.Longs(r.GetProperty("generation").GetProperty("new_token_ids"))
            .TakeWhile((t, i) => i == 0 || GoldenData.Longs(r.GetProperty("generation").GetProperty("new_token_ids"))[i - 1] != 2).ToArray()).ToArray();
        using var cache = fixture.Model.CreateKvCache(2 * b, prompts.Max(p => p.Length) + maxNew);
        var slotOf = Enumerable.Range(0, b).Select(r => 2 * (b - 1 - r)).ToArray();

        var generated = Enumerable.Range(0, b).Select(_ => new List<long>()).ToArray();
        var lengths = new int[b];
        var stepDiff = 0.0;
        for (var r = 0; r < b; r++)
        {
            var mask = GoldenData.Longs(rows[r].GetProperty("image_embeds_position_mask"));
            var pad = GoldenData.Longs(rows[r].GetProperty("attention_mask")).Count(a => a == 0);
            var logits = fixture.Model.Prefill(cache, slotOf[r], prompts[r], 0, fixture.ImageEmbeds(GoldenData.ImageStem(rows[r])),
                GoldenData.ImageOffset(mask, latent) - pad); // [1, V]
            stepDiff = Math.Max(stepDiff, GoldenData.MaxAbsDiff(logits[0], stepLogits[0][r]));
            generated[r].Add(logits[0].argmax().item<long>());
            lengths[r] = prompts[r].Length;
        }
        for (var step = 1; step < maxNew; step++)
        {
            var active = Enumerable.Range(0, b).Where(r => generated[r][^1] != 2).ToArray(); // finished rows leave
            if (active.Length == 0)
            {
                break;
            }
            var logits = fixture.Model.DecodeStep(cache, active.Select(r => slotOf[r]).ToArray(),
                active.Select(r => generated[r][^1]).ToArray(), active.Select(r => lengths[r]).ToArray()); // [n, V]
            for (var i = 0; i < active.Length; i++)
            {
                var r = active[i];
                stepDiff = Math.Max(stepDiff, GoldenData.MaxAbsDiff(logits[i], stepLogits[step][r]));
                generated[r].Add(logits[i].argmax().item<long>());
                lengths[r]++;
            }
        }

        output.WriteLine($"{batchName} (serving slots): step logits {stepDiff:E2}");
        for (var r = 0; r < b; r++)
        {
            Assert.Equal(expected[r], generated[r].ToArray());
        }
        Assert.True(stepDiff < Tolerance, $"step logits {stepDiff}");
    }
}
