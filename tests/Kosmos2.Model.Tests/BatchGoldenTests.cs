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

    /// <summary>Golden batch × slot stride: 2 reads the cache as a view of the slot range, 3 (a range over 2×B) as a gather copy.</summary>
    public static TheoryData<string, int> BatchesAndSlotStrides()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in GoldenData.BatchNames())
        {
            data.Add(name, 2);
            data.Add(name, 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BatchesAndSlotStrides))]
    public void Serving_layout_each_row_in_its_own_slot_reproduces_every_row(string batchName, int slotStride)
    {
        using var scope = NewDisposeScope();
        using var tensors = GoldenData.BatchTensors(batchName);
        var (b, maxNew, stepLogits, prompts, expected, images, imageOffsets) = Unpadded(batchName, tensors);
        // Each row in a slot scattered over a larger pool (slot of row r = stride·(b−1−r): not consecutive, reversed).
        using var cache = fixture.Model.CreateKvCache(slotStride * b, prompts.Max(p => p.Length) + maxNew);
        var slotOf = Enumerable.Range(0, b).Select(r => slotStride * (b - 1 - r)).ToArray();

        var generated = Enumerable.Range(0, b).Select(_ => new List<long>()).ToArray();
        var lengths = new int[b];
        var stepDiff = 0.0;
        for (var r = 0; r < b; r++)
        {
            var logits = fixture.Model.Prefill(cache, slotOf[r], prompts[r], 0, images[r], imageOffsets[r]); // [1, V]
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

        output.WriteLine($"{batchName} (serving slots, stride {slotStride}): step logits {stepDiff:E2}");
        for (var r = 0; r < b; r++)
        {
            Assert.Equal(expected[r], generated[r].ToArray());
        }
        Assert.True(stepDiff < Tolerance, $"step logits {stepDiff}");
    }

    /// <summary>
    /// The engine's layout: every step is one <see cref="Kosmos2TextForCausalLM.Step"/> forward. Rows join one after
    /// another, each prompt in chunks of 7 tokens (so chunks start and end inside the image rows) while the rows that
    /// joined earlier decode in the same forward; finished rows leave. Each row's logits and tokens equal the reference.
    /// </summary>
    [Theory]
    [MemberData(nameof(GoldenData.Batches), MemberType = typeof(GoldenData))]
    public void One_forward_per_step_with_rows_joining_mid_stream_reproduces_every_row(string batchName)
    {
        const int ChunkTokens = 7;
        using var scope = NewDisposeScope();
        using var tensors = GoldenData.BatchTensors(batchName);
        var (b, maxNew, stepLogits, prompts, expected, images, imageOffsets) = Unpadded(batchName, tensors);
        using var cache = fixture.Model.CreateKvCache(b, prompts.Max(p => p.Length) + maxNew);
        var slotOf = Enumerable.Range(0, b).Select(r => b - 1 - r).ToArray(); // out of order: the range view with scattered queries

        var prefilled = new int[b];
        var generated = Enumerable.Range(0, b).Select(_ => new List<long>()).ToArray();
        var diff = 0.0;
        var mixedSteps = 0;
        var batchedDecodeOnlySteps = 0;
        // Row r joins at step 3r: its chunks run beside the decode rows of rows that joined earlier.
        var joinStep = Enumerable.Range(0, b).Select(r => 3 * r).ToArray();
        for (var step = 0; step < 10_000; step++)
        {
            bool Done(int r) => generated[r].Count == maxNew || (generated[r].Count > 0 && generated[r][^1] == 2);
            var decoding = Enumerable.Range(0, b).Where(r => prefilled[r] == prompts[r].Length && !Done(r)).ToArray();
            var chunks = Enumerable.Range(0, b).Where(r => joinStep[r] <= step && prefilled[r] < prompts[r].Length).ToArray();
            if (decoding.Length == 0 && chunks.Length == 0 && prefilled.Select((p, r) => p == prompts[r].Length).All(x => x))
            {
                break;
            }
            if (decoding.Length == 0 && chunks.Length == 0)
            {
                continue; // nobody has joined yet
            }
            var parts = chunks.Select(r =>
            {
                var length = Math.Min(ChunkTokens, prompts[r].Length - prefilled[r]);
                return new PrefillPart(slotOf[r], prompts[r][prefilled[r]..(prefilled[r] + length)], prefilled[r], images[r], imageOffsets[r],
                    Logits: prefilled[r] + length == prompts[r].Length);
            }).ToList();
            mixedSteps += decoding.Length > 0 && chunks.Length > 0 ? 1 : 0;
            batchedDecodeOnlySteps += decoding.Length > 1 && chunks.Length == 0 ? 1 : 0;
            var logits = fixture.Model.Step(cache, decoding.Select(r => slotOf[r]).ToArray(), decoding.Select(r => generated[r][^1]).ToArray(),
                decoding.Select(r => prompts[r].Length + generated[r].Count - 1).ToArray(), parts);
            var row = 0;
            foreach (var r in decoding)
            {
                diff = Math.Max(diff, GoldenData.MaxAbsDiff(logits![row], stepLogits[generated[r].Count][r]));
                generated[r].Add(logits[row++].argmax().item<long>());
            }
            for (var i = 0; i < chunks.Length; i++)
            {
                var r = chunks[i];
                prefilled[r] += parts[i].InputIds.Length;
                if (parts[i].Logits)
                {
                    diff = Math.Max(diff, GoldenData.MaxAbsDiff(logits![row], stepLogits[0][r]));
                    generated[r].Add(logits[row++].argmax().item<long>());
                }
            }
            Assert.Equal(row, logits is null ? 0 : (int)logits.shape[0]);
        }

        output.WriteLine($"{batchName} (one forward per step, {mixedSteps} steps mixing decode rows and chunks, {batchedDecodeOnlySteps} decode-only steps of 2+ rows): logits {diff:E2}");
        Assert.True(mixedSteps > 0, "no step mixed decode rows with prompt chunks");
        Assert.True(batchedDecodeOnlySteps > 0, "no decode-only step of several rows");
        for (var r = 0; r < b; r++)
        {
            Assert.Equal(expected[r], generated[r].ToArray());
        }
        Assert.True(diff < Tolerance, $"logits {diff}");
    }

    /// <summary>
    /// A golden left-padded batch as the serving layout takes it: each row's prompt without its padding, the image
    /// offset within it, the row's image embeddings, and the reference tokens up to and including the first
    /// <c>&lt;/s&gt;</c>; step logits [steps, B, V] from <paramref name="tensors"/>.
    /// </summary>
    private (int Rows, int MaxNew, Tensor StepLogits, long[][] Prompts, long[][] Expected, Tensor[] Images, int[] ImageOffsets) Unpadded(
        string batchName, Kosmos2.Model.Loading.SafetensorsFile tensors)
    {
        var json = GoldenData.BatchJson(batchName);
        var rows = json.GetProperty("rows").EnumerateArray().ToList();
        var latent = fixture.Model.Config.LatentQueryNum;
        var prompts = rows.Select(r => GoldenData.Longs(r.GetProperty("input_ids")).Where((_, i) =>
            GoldenData.Longs(r.GetProperty("attention_mask"))[i] == 1).ToArray()).ToArray();
        var expected = rows.Select(r => GoldenData.Longs(r.GetProperty("generation").GetProperty("new_token_ids"))
            .TakeWhile((t, i) => i == 0 || GoldenData.Longs(r.GetProperty("generation").GetProperty("new_token_ids"))[i - 1] != 2).ToArray()).ToArray();
        var images = rows.Select(r => fixture.ImageEmbeds(GoldenData.ImageStem(r))).ToArray();
        var imageOffsets = rows.Select(r => GoldenData.ImageOffset(GoldenData.Longs(r.GetProperty("image_embeds_position_mask")), latent)
            - GoldenData.Longs(r.GetProperty("attention_mask")).Count(a => a == 0)).ToArray();
        return (rows.Count, json.GetProperty("max_new_tokens").GetInt32(), tensors.Read("step_logits"), prompts, expected, images, imageOffsets);
    }
}
