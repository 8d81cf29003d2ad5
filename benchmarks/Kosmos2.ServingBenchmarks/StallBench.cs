using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Model;
using DecoderClient = Kosmos2.Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient;

namespace Kosmos2.ServingBenchmarks;

/// <summary>
/// `stall`: how long one long prefill holds up streams that are already decoding, per prefill budget
/// (<c>Decoder:MaxTokensPerStep</c>). One decoder worker per budget, one at a time: 4 short streams decode, their
/// inter-token gaps are recorded for a baseline window, then one long prompt arrives and the gaps go on being recorded
/// until it has its first token. Small budgets split the prompt into many chunked steps (small gaps, later first
/// token); a budget above the prompt prefills it in one step (one large gap, earliest first token).
/// </summary>
internal static class StallBench
{
    public static async Task RunAsync(BenchOptions options, Figures figures)
    {
        var budgets = options.String("budgets", "64,1024").Split(',').Select(int.Parse).ToArray();
        var streams = options.Int("streams", 4);
        var tokens = options.Int("tokens", 80);
        var baselineTokens = options.Int("baseline-tokens", 10);
        var longLength = options.Int("long-prompt", 700);
        var longTokens = options.Int("long-tokens", 4);
        var seed = options.Int("seed", 42);
        var config = Kosmos2Config.Default;
        var shortPrompt = SyntheticPrompt.Create(config.Text.VocabSize, config.Text.EmbedDim, seed);
        var longPrompt = SyntheticPrompt.Create(config.Text.VocabSize, config.Text.EmbedDim, seed + 1, longLength);
        Progress.Log($"sizing: budgets {string.Join('/', budgets)} tokens per step; {streams} streams × {tokens} new tokens ({SyntheticPrompt.Length}-token prompts), "
            + $"baseline {baselineTokens} tokens per stream, then one {longLength}-token prompt (64 image rows) × {longTokens} new tokens; KV slots of 1024 tokens");

        var allBaseline = new List<double>();
        var baselines = new List<double>();
        foreach (var budget in budgets)
        {
            var result = await RunBudgetAsync(budget, shortPrompt, longPrompt, streams, tokens, baselineTokens, longTokens);
            allBaseline.AddRange(result.BaselineGapsMs);
            baselines.Add(Stats.Median(result.BaselineGapsMs));
            figures.Add($"stall_gap_median_baseline_budget{budget}_ms", Stats.Median(result.BaselineGapsMs), "ms");
            figures.Add($"stall_gap_median_during_prefill_budget{budget}_ms", Stats.Median(result.StallGapsMs), "ms");
            figures.Add($"stall_gap_max_budget{budget}_ms", result.StallGapsMs.Count > 0 ? result.StallGapsMs.Max() : double.NaN, "ms");
            figures.Add($"stall_ttft_long_budget{budget}_ms", result.LongTtftMs, "ms");
            figures.Add($"stall_load_average_budget{budget}", result.Load, "(1 min, at the long prompt's first token)");
        }
        figures.Add("stall_gap_median_baseline_ms", Stats.Median(allBaseline), "ms (all budgets)");
        if (baselines.Count > 1 && baselines.Max() > 1.5 * baselines.Min())
        {
            Progress.Log($"WARNING baseline gaps differ {baselines.Max() / baselines.Min():F1}× between budgets (same 4-row decode step): "
                + "the machine's load changed between them; rerun before comparing (e.g. --budgets in the other order)");
        }
    }

    private sealed record BudgetResult(List<double> BaselineGapsMs, List<double> StallGapsMs, double LongTtftMs, double Load);

    private static async Task<BudgetResult> RunBudgetAsync(int budget, SyntheticPrompt shortPrompt, SyntheticPrompt longPrompt, int streams, int tokens, int baselineTokens, int longTokens)
    {
        await using var worker = Services.Start($"decoder-worker (budget {budget})", "decoder-worker", "Kosmos2.DecoderWorker", new()
        {
            ["Decoder__RandomInit"] = "default",
            ["Decoder__DType"] = "bfloat16",
            ["Decoder__Device"] = "cpu",
            ["Decoder__MaxTokensPerStep"] = budget.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Decoder__MaxSequenceTokens"] = "1024",
        });
        await Services.WaitAsync(worker);
        var client = new DecoderClient(worker.Channel);
        var info = await client.GetInfoAsync(new DecoderInfoRequest());
        Progress.Log($"budget {budget}: worker {info.Model.Dtype} on {info.Model.Device}, max_running {info.MaxRunning}, KV {info.KvSlotsTotal} slots × {info.MaxSequenceTokens} tokens");

        // Warm-up: the gRPC connection and one short request.
        await DecoderBench.RunStreamAsync(client, shortPrompt.Request(4, ignoreEos: true), Stopwatch.StartNew());

        var clock = Stopwatch.StartNew();
        var running = Enumerable.Range(0, streams).Select(_ => LiveStream.Start(client, shortPrompt.Request(tokens, ignoreEos: true), clock)).ToArray();
        while (running.Any(s => s.Count == 0))
        {
            await PollAsync(running);
        }
        var decodingFrom = running.Max(s => s.Arrivals()[0]);
        Progress.Log($"budget {budget}: all {streams} streams decoding at {decodingFrom:F2} s; recording a baseline of {baselineTokens} tokens each; load {LoadAverage.Now()}");
        while (running.Any(s => s.Arrivals().Count(a => a > decodingFrom) < baselineTokens))
        {
            await PollAsync(running);
        }

        var longSubmit = clock.Elapsed.TotalSeconds;
        Progress.Log($"budget {budget}: long prompt submitted at {longSubmit:F2} s");
        var longStream = LiveStream.Start(client, longPrompt.Request(longTokens, ignoreEos: true), clock);
        while (longStream.Count == 0)
        {
            await PollAsync([.. running, longStream]);
        }
        var longFirst = longStream.Arrivals()[0];
        var load = LoadAverage.OneMinute();
        Progress.Log($"budget {budget}: long prompt's first token at {longFirst:F2} s (TTFT {(longFirst - longSubmit) * 1000:F0} ms); load {LoadAverage.Now()}");
        await Task.WhenAll(running.Select(s => s.Completion).Append(longStream.Completion));

        var baseline = new List<double>();
        var stall = new List<double>();
        foreach (var stream in running)
        {
            var at = stream.Arrivals();
            if (at[^1] < longFirst)
            {
                Progress.Log($"budget {budget}: WARNING a stream ended at {at[^1]:F2} s, before the long prompt's first token: raise --tokens");
            }
            for (var i = 1; i < at.Count; i++)
            {
                var gapMs = (at[i] - at[i - 1]) * 1000;
                if (at[i - 1] >= decodingFrom && at[i] <= longSubmit)
                {
                    baseline.Add(gapMs);
                }
                // Any gap that overlaps the prefill window [submit, first token] was (partly) spent on the long prompt.
                else if (at[i] > longSubmit && at[i - 1] < longFirst)
                {
                    stall.Add(gapMs);
                }
            }
        }
        Progress.Log($"budget {budget}: baseline gaps median {Stats.Median(baseline):F0} ms (n={baseline.Count}); during prefill {stall.Count} gaps, "
            + $"median {Stats.Median(stall):F0} ms, max {(stall.Count > 0 ? stall.Max() : double.NaN):F0} ms; stopping the worker");
        return new BudgetResult(baseline, stall, (longFirst - longSubmit) * 1000, load);
    }

    /// <summary>Waits a little; throws at once if a stream failed instead of polling forever.</summary>
    private static async Task PollAsync(IEnumerable<LiveStream> streams)
    {
        await Task.Delay(20);
        foreach (var stream in streams.Where(s => s.Completion.IsFaulted))
        {
            await stream.Completion;
        }
        if (streams.Any(s => s.Completion.IsCompleted && s.Count == 0))
        {
            throw new InvalidOperationException("a stream ended without a token");
        }
    }

    /// <summary>One Generate stream whose token arrival times can be read while it runs.</summary>
    private sealed class LiveStream
    {
        private readonly Lock _gate = new();
        private readonly List<double> _arrivals = [];

        private LiveStream()
        {
        }

        public Task Completion { get; private set; } = Task.CompletedTask;

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _arrivals.Count;
                }
            }
        }

        public IReadOnlyList<double> Arrivals()
        {
            lock (_gate)
            {
                return [.. _arrivals];
            }
        }

        public static LiveStream Start(DecoderClient client, DecodeRequest request, Stopwatch clock)
        {
            var stream = new LiveStream();
            stream.Completion = Task.Run(() => stream.ReadAsync(client, request, clock));
            return stream;
        }

        private async Task ReadAsync(DecoderClient client, DecodeRequest request, Stopwatch clock)
        {
            using var call = client.Generate(request);
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                if (message.TokenIds.Count > 0)
                {
                    var now = clock.Elapsed.TotalSeconds;
                    lock (_gate)
                    {
                        _arrivals.Add(now);
                    }
                }
            }
        }
    }
}
