using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Model;
using Kosmos2.Launch;
using DecoderClient = Kosmos2.Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient;

namespace Kosmos2.ServingBenchmarks;

/// <summary>One stream as the client saw it, in seconds on the run's clock.</summary>
internal sealed record StreamTrace(double SubmitS, double FirstTokenS, double EndS, IReadOnlyList<(double At, int Count)> Arrivals, int Tokens, double QueueMs);

/// <summary>
/// `decoder`: one decoder worker per Decoder:Kernels setting (native and torch by default, both loaded, rounds
/// alternating between them), full-size architecture, random bf16 weights. Aggregate tokens/s at 1, 4 and 16
/// concurrent streams (ignore_eos, fixed lengths) and native ÷ torch per round, then a mixed workload (staggered
/// arrivals, lengths 8–128) on the first worker under continuous batching versus static batches of 16 emulated by the client.
/// </summary>
internal static class DecoderBench
{
    public static async Task RunAsync(BenchOptions options, Figures figures)
    {
        var tokens = options.Int("tokens", 24);
        var reps = options.Int("reps", 3);
        var mixedRequests = options.Int("mixed-requests", 64);
        var mixedGapMs = options.Int("mixed-gap-ms", 250);
        var seed = options.Int("seed", 42);
        var levels = options.String("streams", "1,4,16").Split(',').Select(int.Parse).ToArray();
        var kernels = options.String("kernels", "native,torch").Split(',');
        var maxSequenceTokens = options.Int("max-sequence-tokens", 1024);
        var config = Kosmos2Config.Default;
        Progress.Log($"sizing: {string.Join('/', levels)} streams × {tokens} new tokens × {reps} reps; mixed {mixedRequests} requests, 8–128 new tokens, "
            + $"mean gap {mixedGapMs} ms, seed {seed}; prompts of {SyntheticPrompt.Length} tokens (64 image positions)");

        // One worker per kernel setting, started one after the other (each holds ~3 GB of weights plus its KV pool).
        var workers = new List<ServiceProcess>();
        var clients = new Dictionary<string, DecoderClient>();
        var prompt = SyntheticPrompt.Create(config.Text.VocabSize, config.Text.EmbedDim, seed);
        DecoderInfo info = null!;
        try
        {
            foreach (var kernel in kernels)
            {
                var worker = Services.Start($"decoder-worker-{kernel}", "decoder-worker", "Kosmos2.DecoderWorker", new()
                {
                    ["Decoder__RandomInit"] = "default",
                    ["Decoder__DType"] = "bfloat16",
                    ["Decoder__Device"] = "cpu",
                    ["Decoder__Kernels"] = kernel,
                    ["Decoder__MaxSequenceTokens"] = maxSequenceTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
                workers.Add(worker);
                await Services.WaitAsync(worker);
                clients[kernel] = new DecoderClient(worker.Channel);
                info = await clients[kernel].GetInfoAsync(new DecoderInfoRequest());
                Progress.Log($"worker ({kernel} kernels): {info.Model.ModelId} {info.Model.Dtype} on {info.Model.Device}, max_running {info.MaxRunning}, KV {info.KvSlotsTotal} slots × {info.MaxSequenceTokens} tokens, resident {info.ResidentBytes / 1e9:F1} GB");
                // Warm-up: the gRPC connection and one short request (the worker warmed its own model already).
                await RunStreamAsync(clients[kernel], prompt.Request(4, ignoreEos: true), Stopwatch.StartNew());
            }
            await MeasureAsync(clients, kernels, levels, tokens, reps, prompt, figures);
            if (mixedRequests > 0)
            {
                await MixedAsync(clients[kernels[0]], prompt, mixedRequests, mixedGapMs, seed, (int)info.MaxRunning, options.Int("mixed-reps", 1), figures);
            }
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Rounds of every kernel setting × every level (native 1, 4, 16, torch 1, 4, 16, …), ratios taken per round: the
    /// machine's load swings over minutes, so only measurements next to each other compare.
    /// </summary>
    private static async Task MeasureAsync(Dictionary<string, DecoderClient> clients, string[] kernels, int[] levels, int tokens, int reps,
        SyntheticPrompt prompt, Figures figures)
    {
        var steady = kernels.ToDictionary(k => k, _ => levels.ToDictionary(l => l, _ => new List<double>()));
        var endToEnd = kernels.ToDictionary(k => k, _ => levels.ToDictionary(l => l, _ => new List<double>()));
        for (var rep = 0; rep < reps; rep++)
        {
            foreach (var (kernel, streams) in kernels.SelectMany(k => levels.Select(l => (k, l))))
            {
                var client = clients[kernel];
                var clock = Stopwatch.StartNew();
                var traces = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => RunStreamAsync(client, prompt.Request(tokens, ignoreEos: true), clock)));
                var total = traces.Sum(t => t.Tokens);
                var e2e = total / traces.Max(t => t.EndS);
                var decode = SteadyDecodeRate(traces);
                endToEnd[kernel][streams].Add(e2e);
                steady[kernel][streams].Add(decode);
                Progress.Log($"round {rep + 1}/{reps}, {kernel,-6} {streams,2} streams: {total} tokens in {traces.Max(t => t.EndS):F1} s = {e2e:F2} tok/s end to end, "
                    + $"{decode:F2} tok/s while all {streams} decode (step ≈ {streams / decode * 1000:F0} ms); load {LoadAverage.Now()}");
            }
        }
        foreach (var kernel in kernels)
        {
            foreach (var streams in levels)
            {
                figures.Add($"decode_tokens_per_s_{streams}_streams_{kernel}", Stats.Median(steady[kernel][streams]), "tok/s");
                figures.Add($"e2e_tokens_per_s_{streams}_streams_{kernel}", Stats.Median(endToEnd[kernel][streams]), "tok/s");
            }
            if (levels.Contains(1))
            {
                foreach (var streams in levels.Where(s => s > 1))
                {
                    figures.Add($"decode_speedup_{streams}_vs_1_streams_{kernel}", Stats.Median(steady[kernel][streams].Zip(steady[kernel][1], (n, one) => n / one)), "x (median of per-round ratios)");
                    figures.Add($"e2e_speedup_{streams}_vs_1_streams_{kernel}", Stats.Median(endToEnd[kernel][streams].Zip(endToEnd[kernel][1], (n, one) => n / one)), "x (median of per-round ratios)");
                }
            }
        }
        foreach (var other in kernels.Skip(1))
        {
            foreach (var streams in levels)
            {
                figures.Add($"decode_{kernels[0]}_over_{other}_{streams}_streams", Stats.Median(steady[kernels[0]][streams].Zip(steady[other][streams], (a, b) => a / b)), "x (median of per-round ratios)");
                figures.Add($"e2e_{kernels[0]}_over_{other}_{streams}_streams", Stats.Median(endToEnd[kernels[0]][streams].Zip(endToEnd[other][streams], (a, b) => a / b)), "x (median of per-round ratios)");
            }
        }
    }

    /// <summary>
    /// Same requests (lengths uniform 8–128, exponential gaps), <paramref name="reps"/> rounds of two: continuous = each sent at its arrival, the worker
    /// batches as it likes; static = batches of <paramref name="batch"/> sent together once the last member has arrived
    /// and the previous batch's longest member has finished.
    /// </summary>
    private static async Task MixedAsync(DecoderClient client, SyntheticPrompt prompt, int count, int gapMs, int seed, int batch, int reps, Figures figures)
    {
        var random = new Random(seed);
        var lengths = Enumerable.Range(0, count).Select(_ => random.Next(8, 129)).ToArray();
        var arrivals = new double[count];
        for (var i = 1; i < count; i++)
        {
            arrivals[i] = arrivals[i - 1] + (-Math.Log(1 - random.NextDouble()) * gapMs / 1000.0);
        }
        var totalTokens = lengths.Sum();
        Progress.Log($"mixed workload: {count} requests, {totalTokens} new tokens, arrivals over {arrivals[^1]:F1} s, static batches of {batch}");

        var continuousRates = new List<double>();
        var staticRates = new List<double>();
        var continuousLatency = new List<double>();
        var staticLatency = new List<double>();
        var continuousSteps = new List<double>();
        var staticSteps = new List<double>();
        for (var rep = 0; rep < reps; rep++)
        {
            // Alternate which goes first, so a drift in machine load does not favour one.
            foreach (var mode in rep % 2 == 0 ? new[] { "continuous", "static" } : ["static", "continuous"])
            {
                var stepsBefore = (await client.GetInfoAsync(new DecoderInfoRequest())).Steps;
                var traces = mode == "continuous"
                    ? await ContinuousAsync(client, prompt, lengths, arrivals)
                    : await StaticAsync(client, prompt, lengths, arrivals, batch);
                var steps = (await client.GetInfoAsync(new DecoderInfoRequest())).Steps - stepsBefore;
                var wall = traces.Max(t => t.EndS);
                var rate = traces.Sum(t => t.Tokens) / wall;
                // Latency from arrival (not from when static batching let the request in): what a user waits.
                var latency = Stats.Median(traces.Select((t, i) => t.EndS - arrivals[i]));
                (mode == "continuous" ? continuousRates : staticRates).Add(rate);
                (mode == "continuous" ? continuousLatency : staticLatency).Add(latency);
                (mode == "continuous" ? continuousSteps : staticSteps).Add(steps);
                // Steps are the machine-independent part of the comparison (each reads the weights once); the time
                // per step is where the shared machine's load shows.
                Progress.Log($"mixed round {rep + 1}/{reps} {mode,-10}: {traces.Sum(t => t.Tokens)} tokens in {wall:F1} s = {rate:F2} tok/s, median latency {latency:F1} s, "
                    + $"{steps} engine steps ({wall * 1000 / Math.Max(1, steps):F0} ms per step of wall time); load {LoadAverage.Now()}");
            }
        }
        figures.Add("mixed_total_new_tokens", totalTokens, "tokens");
        figures.Add("mixed_continuous_tokens_per_s", Stats.Median(continuousRates), "tok/s");
        figures.Add("mixed_static_tokens_per_s", Stats.Median(staticRates), "tok/s");
        figures.Add("mixed_continuous_vs_static", Stats.Median(continuousRates.Zip(staticRates, (c, s) => c / s)), "x");
        figures.Add("mixed_continuous_median_latency", Stats.Median(continuousLatency), "s");
        figures.Add("mixed_static_median_latency", Stats.Median(staticLatency), "s");
        figures.Add("mixed_continuous_steps", Stats.Median(continuousSteps), "steps");
        figures.Add("mixed_static_steps", Stats.Median(staticSteps), "steps");
        figures.Add("mixed_static_vs_continuous_steps", Stats.Median(staticSteps.Zip(continuousSteps, (s, c) => s / c)), "x");
    }

    /// <summary>Each request sent at its arrival time; the worker batches as it likes.</summary>
    private static async Task<StreamTrace[]> ContinuousAsync(DecoderClient client, SyntheticPrompt prompt, int[] lengths, double[] arrivals)
    {
        var clock = Stopwatch.StartNew();
        return await Task.WhenAll(Enumerable.Range(0, lengths.Length).Select(async i =>
        {
            await DelayUntil(clock, arrivals[i]);
            return await RunStreamAsync(client, prompt.Request(lengths[i], ignoreEos: true), clock);
        }));
    }

    /// <summary>
    /// Static batching as Hugging Face's <c>generate</c> runs it: a batch is sent once its last member has arrived and
    /// the previous batch finished, and runs until its longest member is done — a finished row keeps being computed
    /// (HF feeds it <c>&lt;pad&gt;</c>) and its result comes back with the batch. Each member therefore decodes the
    /// batch's longest length here, and only its own length counts as useful tokens.
    /// </summary>
    private static async Task<StreamTrace[]> StaticAsync(DecoderClient client, SyntheticPrompt prompt, int[] lengths, double[] arrivals, int batch)
    {
        var clock = Stopwatch.StartNew();
        var traces = new List<StreamTrace>();
        for (var start = 0; start < lengths.Length; start += batch)
        {
            var members = Enumerable.Range(start, Math.Min(batch, lengths.Length - start)).ToArray();
            await DelayUntil(clock, arrivals[members[^1]]);
            var began = clock.Elapsed.TotalSeconds;
            var longest = members.Max(i => lengths[i]);
            var ran = await Task.WhenAll(members.Select(i => RunStreamAsync(client, prompt.Request(longest, ignoreEos: true), clock)));
            traces.AddRange(ran.Select((trace, k) => trace with { Tokens = lengths[members[k]] }));
            Progress.Log($"  static batch {(start / batch) + 1}: {members.Length} requests, longest {members.Max(i => lengths[i])} tokens, {clock.Elapsed.TotalSeconds - began:F1} s");
        }
        return [.. traces];
    }

    /// <summary>
    /// Tokens/s while every stream is decoding: from the moment the last stream got its first token to the moment the
    /// first stream ended (prefills excluded, full batch throughout).
    /// </summary>
    private static double SteadyDecodeRate(IReadOnlyList<StreamTrace> traces)
    {
        var from = traces.Max(t => t.FirstTokenS);
        var to = traces.Min(t => t.EndS);
        var tokens = traces.Sum(t => t.Arrivals.Where(a => a.At > from && a.At <= to).Sum(a => a.Count));
        return to > from ? tokens / (to - from) : double.NaN;
    }

    private static async Task DelayUntil(Stopwatch clock, double seconds)
    {
        var wait = seconds - clock.Elapsed.TotalSeconds;
        if (wait > 0)
        {
            await Task.Delay(TimeSpan.FromSeconds(wait));
        }
    }

    public static async Task<StreamTrace> RunStreamAsync(DecoderClient client, DecodeRequest request, Stopwatch clock)
    {
        var submit = clock.Elapsed.TotalSeconds;
        using var call = client.Generate(request);
        var arrivals = new List<(double, int)>();
        var first = double.NaN;
        var count = 0;
        double queueMs = 0;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            if (message.TokenIds.Count > 0)
            {
                var now = clock.Elapsed.TotalSeconds;
                if (double.IsNaN(first))
                {
                    first = now;
                }
                arrivals.Add((now, message.TokenIds.Count));
                count += message.TokenIds.Count;
            }
            if (message.Final is { } final)
            {
                queueMs = final.Timings.QueueMs;
            }
        }
        return new StreamTrace(submit, first, clock.Elapsed.TotalSeconds, arrivals, count, queueMs);
    }
}

/// <summary>A Kosmos-2-shaped prompt: &lt;s&gt;, 1 token, 64 image positions (random bf16 embeddings), 5 text tokens (more when longer).</summary>
internal sealed class SyntheticPrompt
{
    public const int Length = 71;
    private readonly uint[] _ids;
    private readonly TensorBytes _embeddings;

    private SyntheticPrompt(uint[] ids, TensorBytes embeddings)
    {
        _ids = ids;
        _embeddings = embeddings;
    }

    /// <summary>A prompt of <paramref name="length"/> tokens (≥ 66): &lt;s&gt;, 1 token, 64 image positions, random text ids.</summary>
    public static SyntheticPrompt Create(int vocab, int hidden, int seed, int length = Length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 66);
        var random = new Random(seed);
        var ids = new uint[length];
        for (var i = 1; i < length; i++)
        {
            ids[i] = (uint)random.Next(4, Math.Min(vocab, 2000));
        }
        var data = new byte[64 * hidden * 2];
        for (var i = 0; i < 64 * hidden; i++)
        {
            // bf16 = upper half of a float32; small values like real projected embeddings.
            var value = (float)((random.NextDouble() - 0.5) * 0.1);
            var bits = (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16);
            data[2 * i] = (byte)bits;
            data[(2 * i) + 1] = (byte)(bits >> 8);
        }
        var embeddings = new TensorBytes { Dtype = TensorDType.Bfloat16, Data = ByteString.CopyFrom(data) };
        embeddings.Shape.Add([64u, (uint)hidden]);
        return new SyntheticPrompt(ids, embeddings);
    }

    public DecodeRequest Request(int maxNewTokens, bool ignoreEos)
    {
        var request = new DecodeRequest
        {
            RequestId = "bench",
            ImageEmbeddings = _embeddings,
            ImageOffset = 2,
            Stopping = new DecodeStopping { MaxNewTokens = (uint)maxNewTokens, IgnoreEos = ignoreEos },
        };
        request.InputIds.Add(_ids);
        return request;
    }
}
