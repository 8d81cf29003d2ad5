using System.Diagnostics;
using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Engine;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Benchmarks;

/// <summary>
/// <c>Kosmos2.Benchmarks THREADS grounding</c>: what the grounding constraint and log-probabilities add to a decode
/// step of 16 rows at full size (random bf16 weights, the config's full vocabulary), measured side by side in one run:
/// the step as the runner takes it (one forward + logits to a managed array), the mask of 16 rows in each grammar
/// state (the worst one is the figure), and the greedy pick of 16 rows without and with log-probabilities (top 5).
/// </summary>
internal static class GroundingMaskBenchmark
{
    private const int Rows = 16;

    public static void Run(Action<string, double, string> report)
    {
        Console.WriteLine("building the full-size model with random weights (bf16)…");
        using var model = Kosmos2Model.CreateRandom(Kosmos2Config.Default, ScalarType.BFloat16, torch.CPU, seed: 1234);
        using var noGrad = torch.no_grad();
        var vocab = model.Config.Text.VocabSize;
        var grounding = GroundingVocabulary.FromVocabSize(vocab);
        using var cache = model.CreateKvCache(Rows, 128);
        long[] prompt = [0, grounding.PhraseStartId - 5, .. Enumerable.Range(4, 64).Select(i => (long)i), grounding.ImageEndId, 712, 1648, 9];
        for (var slot = 0; slot < Rows; slot++)
        {
            using var s = NewDisposeScope();
            model.Prefill(cache, slot, prompt, 0, null);
        }
        var slots = Enumerable.Range(0, Rows).ToArray();
        var tokens = Enumerable.Repeat(712L, Rows).ToArray();
        var positions = Enumerable.Repeat(prompt.Length, Rows).ToArray(); // rewrites one index: a constant context
        float[] logits = [];
        var step = Timing.Median(7, () =>
        {
            using var s = NewDisposeScope();
            logits = model.DecodeStep(cache, slots, tokens, positions).to(torch.CPU).contiguous().data<float>().ToArray();
        });
        report($"decode_step_b{Rows}_bf16_ms", step, "ms");

        // One grammar per state; each row is masked on a fresh copy of the step's real logits (the copy is not timed).
        var states = new (string Name, int[] Prefix)[]
        {
            ("text", []),
            ("phrase", [grounding.PhraseStartId, 712]),
            ("after_phrase", [grounding.PhraseStartId, 712, grounding.PhraseEndId]),
            ("object_open", [grounding.ObjectStartId]),
            ("first_patch", [grounding.ObjectStartId, grounding.FirstPatchId + 500]),
            ("second_patch", [grounding.ObjectStartId, grounding.FirstPatchId + 500, grounding.FirstPatchId + 600]),
        };
        var work = new float[Rows * vocab];
        var worst = 0.0;
        foreach (var (name, prefix) in states)
        {
            var grammars = Enumerable.Range(0, Rows).Select(_ => new GroundingGrammar(grounding)).ToArray();
            foreach (var g in grammars)
            {
                g.Observe(prefix);
            }
            var us = MedianMicroseconds(101, () => Fill(work, logits, vocab), () =>
            {
                for (var r = 0; r < Rows; r++)
                {
                    grammars[r].Mask(work.AsSpan(r * vocab, vocab), 64);
                }
            });
            report($"grounding_mask_b{Rows}_{name}_us", us, "us");
            worst = Math.Max(worst, us);
        }

        var plain = Enumerable.Range(0, Rows).Select(_ => new TokenSampler(new SamplingParameters(), [])).ToArray();
        var withLogprobs = Enumerable.Range(0, Rows).Select(_ => new TokenSampler(new SamplingParameters(ReturnLogprobs: true, TopLogprobs: 5), [])).ToArray();
        var pick = MedianMicroseconds(31, () => Fill(work, logits, vocab), () => PickAll(plain, work, vocab));
        var pickLogprobs = MedianMicroseconds(31, () => Fill(work, logits, vocab), () => PickAll(withLogprobs, work, vocab));
        report($"greedy_pick_b{Rows}_us", pick, "us");
        report($"greedy_pick_with_logprobs_top5_b{Rows}_us", pickLogprobs, "us");
        report("vocab_size", vocab, "ids");
        report($"grounding_mask_b{Rows}_worst_state_share_of_step_pct", worst / 1e3 / step * 100, "%");
        report($"logprobs_top5_b{Rows}_share_of_step_pct", (pickLogprobs - pick) / 1e3 / step * 100, "%");
    }

    private static void PickAll(TokenSampler[] samplers, float[] work, int vocab)
    {
        for (var r = 0; r < Rows; r++)
        {
            samplers[r].Next(work.AsSpan(r * vocab, vocab));
        }
    }

    private static void Fill(float[] work, float[] logits, int vocab)
    {
        for (var r = 0; r < Rows; r++)
        {
            logits.AsSpan(r * vocab, vocab).CopyTo(work.AsSpan(r * vocab, vocab));
        }
    }

    private static double MedianMicroseconds(int iterations, Action prepare, Action action)
    {
        var times = new List<double>();
        for (var i = 0; i <= iterations; i++)
        {
            prepare();
            var start = Stopwatch.GetTimestamp();
            action();
            if (i > 0)
            {
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1e3); // the first run warms up
            }
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
