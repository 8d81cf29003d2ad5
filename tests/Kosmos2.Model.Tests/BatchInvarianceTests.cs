using Kosmos2.Kernels;
using Kosmos2.Model.Text;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>The golden checkpoint in bfloat16 with the native kernels (the serving configuration), loaded once.</summary>
public sealed class NativeBf16ModelFixture : IDisposable
{
    public NativeBf16ModelFixture()
    {
        Model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        Model.TextDecoder.UseKernels(Bf16Kernels.Best());
    }

    public Kosmos2Model Model { get; }

    public void Dispose() => Model.Dispose();
}

/// <summary>
/// bfloat16 with Decoder:Kernels = native: a sequence's bits do not depend on what runs beside it. Every golden case is
/// decoded alone (whole-prompt prefill, batch-1 steps), then all cases together in one engine-like loop (prompts in
/// 7-token chunks beside other rows' decode steps, staggered joins, scattered slots), twice with different join
/// orders: every step's logits and every cached key/value must be the same bits.
/// </summary>
[Trait("Category", "Golden")]
public sealed class BatchInvarianceTests(NativeBf16ModelFixture fixture, ITestOutputHelper output) : IClassFixture<NativeBf16ModelFixture>
{
    private const int ChunkTokens = 7;

    private sealed record Case(string Name, long[] Prompt, Tensor Image, int ImageOffset, int MaxNew);

    [Fact]
    public void Each_case_decodes_to_the_same_bits_alone_and_co_batched_at_any_join_time_and_slot()
    {
        using var scope = NewDisposeScope();
        var model = fixture.Model;
        var cases = LoadCases(model);
        Assert.NotEmpty(cases);
        var alone = cases.Select(c => RunAlone(model, c)).ToList();
        var n = cases.Count;
        var orders = new[]
        {
            (Join: Enumerable.Range(0, n).Select(i => 2 * i).ToArray(), Slot: Enumerable.Range(0, n).Select(i => 2 * (n - 1 - i)).ToArray()),
            (Join: Enumerable.Range(0, n).Select(i => 3 * (n - 1 - i)).ToArray(), Slot: Enumerable.Range(0, n).Select(i => i + 1).ToArray()),
        };
        foreach (var (join, slot) in orders)
        {
            var together = RunTogether(model, cases, join, slot);
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(alone[i].Tokens, together[i].Tokens);
                for (var s = 0; s < alone[i].Logits.Count; s++)
                {
                    Assert.True(alone[i].Logits[s].SequenceEqual(together[i].Logits[s]),
                        $"{cases[i].Name}: logits of token {s} differ alone vs co-batched (joins [{string.Join(", ", join)}])");
                }
                for (var layer = 0; layer < alone[i].Keys.Count; layer++)
                {
                    Assert.True(SameBits(alone[i].Keys[layer], together[i].Keys[layer]), $"{cases[i].Name}: layer {layer} keys differ");
                    Assert.True(SameBits(alone[i].Values[layer], together[i].Values[layer]), $"{cases[i].Name}: layer {layer} values differ");
                }
            }
            output.WriteLine($"joins [{string.Join(", ", join)}], slots [{string.Join(", ", slot)}]: {n} cases, tokens [{string.Join("; ", together.Select(t => t.Tokens.Length))}] identical to alone");
        }
    }

    [Fact]
    public void A_prompt_cache_is_the_same_bits_prefilled_whole_and_in_7_token_chunks()
    {
        using var scope = NewDisposeScope();
        var model = fixture.Model;
        foreach (var c in LoadCases(model))
        {
            using var whole = model.CreateKvCache(1, c.Prompt.Length);
            var wholeLogits = model.Prefill(whole, 0, c.Prompt, 0, c.Image, c.ImageOffset);
            using var chunked = model.CreateKvCache(3, c.Prompt.Length);
            Tensor? chunkLogits = null;
            for (var start = 0; start < c.Prompt.Length; start += ChunkTokens)
            {
                var length = Math.Min(ChunkTokens, c.Prompt.Length - start);
                chunkLogits = model.Prefill(chunked, 2, c.Prompt.AsSpan(start, length), start, c.Image, c.ImageOffset);
            }
            Assert.True(SameBits(wholeLogits, chunkLogits!), $"{c.Name}: last-token logits differ whole vs chunked");
            for (var layer = 0; layer < model.Config.Text.Layers; layer++)
            {
                Assert.True(SameBits(whole.Layer(layer).Keys[0], chunked.Layer(layer).Keys[2]), $"{c.Name}: layer {layer} keys differ");
                Assert.True(SameBits(whole.Layer(layer).Values[0], chunked.Layer(layer).Values[2]), $"{c.Name}: layer {layer} values differ");
            }
        }
    }

    [Fact]
    public void Native_bfloat16_stays_close_to_the_float32_reference()
    {
        using var scope = NewDisposeScope();
        var model = fixture.Model;
        var worst = 0.0;
        foreach (var c in LoadCases(model))
        {
            using var tensors = GoldenData.CaseTensors(c.Name);
            using var cache = model.CreateKvCache(1, c.Prompt.Length);
            var diff = GoldenData.MaxAbsDiff(model.Prefill(cache, 0, c.Prompt, 0, c.Image, c.ImageOffset, allLogits: true).unsqueeze(0), tensors.Read("logits"));
            output.WriteLine($"{c.Name}: prompt logits differ from the float32 reference by {diff:F4}");
            worst = Math.Max(worst, diff);
        }
        // The same loose bound as the libtorch bf16 test (Bfloat16Tests): 8-bit mantissas, deterministic.
        Assert.True(worst < 1.0, $"prompt logits differ by {worst}");
    }

    private static List<Case> LoadCases(Kosmos2Model model) => GoldenData.CaseNames().Select(name =>
    {
        var json = GoldenData.CaseJson(name);
        using var image = GoldenData.ImageTensors(GoldenData.ImageStem(json));
        var ids = GoldenData.Longs(json.GetProperty("input_ids"));
        var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), model.Config.LatentQueryNum);
        var maxNew = json.GetProperty("generation").GetProperty("max_new_tokens").GetInt32();
        return new Case(name, ids, model.EncodeImages(image.Read("pixel_values")), offset, maxNew);
    }).ToList();

    /// <summary>Same shape and the same bits (bf16 or float32) in every element.</summary>
    internal static bool SameBits(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);
    }

    private sealed record Run(long[] Tokens, List<float[]> Logits, List<Tensor> Keys, List<Tensor> Values);

    /// <summary>Whole-prompt prefill then batch-1 decode steps in a cache of its own.</summary>
    private static Run RunAlone(Kosmos2Model model, Case c)
    {
        using var cache = model.CreateKvCache(1, c.Prompt.Length + c.MaxNew);
        var logits = new List<float[]>();
        var tokens = new List<long>();
        var next = model.Prefill(cache, 0, c.Prompt, 0, c.Image, c.ImageOffset)[0];
        while (true)
        {
            logits.Add(next.data<float>().ToArray()); // compared with SequenceEqual below: float bits up to the sign of zero
            tokens.Add(next.argmax().item<long>());
            if (tokens.Count == c.MaxNew || tokens[^1] == model.Config.Text.EosTokenId)
            {
                break;
            }
            next = model.DecodeStep(cache, [0], [tokens[^1]], [c.Prompt.Length + tokens.Count - 1])[0];
        }
        return Snapshot(model, cache, 0, c, tokens, logits);
    }

    /// <summary>
    /// All cases in one cache: case i enters at step join[i] into slot slot[i]; each step is one forward of the running
    /// cases' decode rows plus one 7-token chunk of every case still prefilling.
    /// </summary>
    private static List<Run> RunTogether(Kosmos2Model model, List<Case> cases, int[] join, int[] slot)
    {
        var n = cases.Count;
        using var cache = model.CreateKvCache(slot.Max() + 1, cases.Max(c => c.Prompt.Length + c.MaxNew));
        var prefilled = new int[n];
        var tokens = cases.Select(_ => new List<long>()).ToArray();
        var logits = cases.Select(_ => new List<float[]>()).ToArray();
        bool Done(int i) => tokens[i].Count == cases[i].MaxNew || (tokens[i].Count > 0 && tokens[i][^1] == model.Config.Text.EosTokenId);
        for (var step = 0; Enumerable.Range(0, n).Any(i => !Done(i)); step++)
        {
            using var scope = NewDisposeScope();
            var decoding = Enumerable.Range(0, n).Where(i => prefilled[i] == cases[i].Prompt.Length && !Done(i)).ToArray();
            var chunks = Enumerable.Range(0, n).Where(i => join[i] <= step && prefilled[i] < cases[i].Prompt.Length).ToArray();
            if (decoding.Length == 0 && chunks.Length == 0)
            {
                continue;
            }
            var parts = chunks.Select(i =>
            {
                var length = Math.Min(ChunkTokens, cases[i].Prompt.Length - prefilled[i]);
                return new PrefillPart(slot[i], cases[i].Prompt[prefilled[i]..(prefilled[i] + length)], prefilled[i], cases[i].Image, cases[i].ImageOffset,
                    Logits: prefilled[i] + length == cases[i].Prompt.Length);
            }).ToList();
            var result = model.Step(cache, decoding.Select(i => slot[i]).ToArray(), decoding.Select(i => tokens[i][^1]).ToArray(),
                decoding.Select(i => cases[i].Prompt.Length + tokens[i].Count - 1).ToArray(), parts);
            var row = 0;
            void Take(int i)
            {
                var rowLogits = result![row++];
                logits[i].Add(rowLogits.data<float>().ToArray());
                tokens[i].Add(rowLogits.argmax().item<long>());
            }
            foreach (var i in decoding)
            {
                Take(i);
            }
            for (var p = 0; p < chunks.Length; p++)
            {
                prefilled[chunks[p]] += parts[p].InputIds.Length;
                if (parts[p].Logits)
                {
                    Take(chunks[p]);
                }
            }
        }
        return Enumerable.Range(0, n).Select(i => Snapshot(model, cache, slot[i], cases[i], tokens[i], logits[i])).ToList();
    }

    /// <summary>The slot's keys/values at every position written (prompt and fed tokens), copied out of the cache.</summary>
    private static Run Snapshot(Kosmos2Model model, Kosmos2KvCache cache, int slot, Case c, List<long> tokens, List<float[]> logits)
    {
        var written = c.Prompt.Length + tokens.Count - 1;
        var keys = new List<Tensor>();
        var values = new List<Tensor>();
        for (var layer = 0; layer < model.Config.Text.Layers; layer++)
        {
            keys.Add(cache.Layer(layer).Keys[slot].narrow(1, 0, written).clone());
            values.Add(cache.Layer(layer).Values[slot].narrow(1, 0, written).clone());
        }
        return new Run([.. tokens], logits, keys, values);
    }
}

/// <summary>float32 is unaffected by Decoder:Kernels: the native kernels are bf16-only, so every golden case gives the same bits.</summary>
[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class Float32KernelSettingTests(GoldenModelFixture fixture)
{
    [Fact]
    public void Float32_logits_are_the_same_bits_with_native_and_torch_kernels()
    {
        using var scope = NewDisposeScope();
        var model = fixture.Model;
        foreach (var name in GoldenData.CaseNames())
        {
            var json = GoldenData.CaseJson(name);
            var ids = GoldenData.Longs(json.GetProperty("input_ids"));
            var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), model.Config.LatentQueryNum);
            var image = fixture.ImageEmbeds(GoldenData.ImageStem(json));
            using var torchCache = model.CreateKvCache(1, ids.Length);
            var viaTorch = model.Prefill(torchCache, 0, ids, 0, image, offset, allLogits: true);
            try
            {
                model.TextDecoder.UseKernels(Bf16Kernels.Best());
                using var nativeCache = model.CreateKvCache(1, ids.Length);
                Assert.True(BatchInvarianceTests.SameBits(viaTorch, model.Prefill(nativeCache, 0, ids, 0, image, offset, allLogits: true)), $"{name}: float32 logits changed");
            }
            finally
            {
                model.TextDecoder.UseKernels(null);
            }
        }
    }
}

/// <summary>
/// Switching bf16 kernels packs the decoder blocks' weights in place for the native ones and restores them for libtorch:
/// libtorch gives the same bits before and after a round trip through the native kernels, and those differ from it.
/// </summary>
[Trait("Category", "Golden")]
public sealed class PackedWeightsTests
{
    [Fact]
    public void Libtorch_logits_are_the_same_bits_before_and_after_the_native_kernels_ran()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        var name = GoldenData.CaseNames()[0];
        var json = GoldenData.CaseJson(name);
        var ids = GoldenData.Longs(json.GetProperty("input_ids"));
        var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), model.Config.LatentQueryNum);
        using var pixels = torch.zeros(1, 3, model.Config.Vision.ImageSize, model.Config.Vision.ImageSize, ScalarType.BFloat16);
        var image = model.EncodeImages(pixels);
        Tensor Prefill()
        {
            using var cache = model.CreateKvCache(1, ids.Length);
            return model.Prefill(cache, 0, ids, 0, image, offset, allLogits: true);
        }
        var before = Prefill();
        model.TextDecoder.UseKernels(Bf16Kernels.Best());
        var native = Prefill();
        model.TextDecoder.UseKernels(null);
        var after = Prefill();
        Assert.True(BatchInvarianceTests.SameBits(before, after), $"{name}: libtorch's logits changed after the native kernels ran");
        Assert.False(BatchInvarianceTests.SameBits(before, native), $"{name}: the native kernels gave libtorch's exact bits (were they used?)");
        Assert.True((before - native).abs().max().item<float>() < 1.0f, $"{name}: native and libtorch logits far apart");
    }

    [Fact]
    public void The_decoder_input_read_from_the_packed_token_table_is_libtorchs_bit_for_bit()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        var vocab = model.Config.Text.VocabSize;
        // Every token id, the table's last (stored) rows included, in prompts of 64; then the golden prompt with its image rows.
        var prompts = Enumerable.Range(0, vocab).Select(i => (long)i).Chunk(64).ToList();
        var json = GoldenData.CaseJson(GoldenData.CaseNames()[0]);
        prompts.Add(GoldenData.Longs(json.GetProperty("input_ids")));
        var offset = GoldenData.ImageOffset(GoldenData.Longs(json.GetProperty("image_embeds_position_mask")), model.Config.LatentQueryNum);
        using var pixels = torch.rand(1, 3, model.Config.Vision.ImageSize, model.Config.Vision.ImageSize).to(ScalarType.BFloat16);
        var image = model.EncodeImages(pixels);
        Tensor DecoderInput(int prompt)
        {
            using var cache = model.CreateKvCache(1, prompts[prompt].Length);
            var hidden = new List<Tensor>();
            var rows = prompt == prompts.Count - 1 ? image : null;
            using var logits = model.TextDecoder.Prefill(cache, 0, prompts[prompt], 0, rows, offset, hiddenStates: hidden);
            foreach (var later in hidden.Skip(1))
            {
                later.Dispose();
            }
            return hidden[0];
        }
        var expected = Enumerable.Range(0, prompts.Count).Select(DecoderInput).ToList();
        model.TextDecoder.UseKernels(Bf16Kernels.Best());
        Assert.True(Bf16Kernels.PackedFeatures(vocab, model.Config.Text.EmbedDim) > 0, "the golden table packs no rows");
        var native = Enumerable.Range(0, prompts.Count).Select(DecoderInput).ToList();
        model.TextDecoder.UseKernels(null);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(BatchInvarianceTests.SameBits(expected[i], native[i]), $"prompt {i}: the embedding read from the packed table differs from libtorch's");
        }
        foreach (var input in expected.Concat(native))
        {
            input.Dispose();
        }
    }
}
