using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Launch;
using GatewayClient = Kosmos2.Contracts.V1.Kosmos2.Kosmos2Client;
using VisionClient = Kosmos2.Contracts.Internal.V1.VisionWorker.VisionWorkerClient;

namespace Kosmos2.ServingBenchmarks;

/// <summary>
/// `chat`: what the decoder's prefix cache saves, in one run. Redis, a vision worker and two decoders of the full-size
/// architecture (random bf16): <c>reuse</c> with the prefix cache (<c>Decoder__PrefixCacheSlots</c> default) and
/// <c>reprefill</c> with it off, each behind its own gateway; the paths alternate, one at a time, so they never share
/// the cores. (1) A chat of <c>--turns</c> turns (<c>--answer-tokens</c> each) per path on a fresh image: time to first
/// token of the last turn, which re-reads the whole context without the cache. (2) Phrase grounding of
/// <c>--phrases</c> phrases over one image (encoded beforehand, so neither path pays the encode), end to end.
/// Targets: <c>chat_turn4_ttft_reuse_vs_reprefill</c> ≤ 0.25, <c>phrase_grounding_reuse_speedup</c> ≥ 2.
/// </summary>
internal static class ChatBench
{
    private static readonly string[] Questions =
    [
        "What is in this picture?",
        "What is <phrase>the object on the left</phrase> made of?",
        "Where is it standing, and what is next to it?",
        "What colour is <phrase>the thing behind it</phrase>?",
        "Is there anything else worth noting?",
        "Why?",
    ];

    private static readonly string[] Phrases = ["a dog", "the ball", "a red car", "the tall tree", "two people", "a bench", "the sky", "a window", "the road", "a bicycle"];

    public static async Task RunAsync(BenchOptions options, Figures figures)
    {
        var turns = Math.Clamp(options.Int("turns", 4), 2, Questions.Length);
        var answerTokens = options.Int("answer-tokens", 40);
        var reps = options.Int("reps", 2);
        var phraseCount = Math.Clamp(options.Int("phrases", 8), 2, Phrases.Length);
        var phraseTokens = options.Int("phrase-tokens", 8);
        Progress.Log($"sizing: {reps} reps; a {turns}-turn chat ({answerTokens} new tokens per answer, greedy) and phrase grounding of {phraseCount} phrases ({phraseTokens} new tokens each) per path");

        var configDir = Directory.CreateTempSubdirectory("kosmos2-chat-bench-");
        var started = new List<IAsyncDisposable>();
        try
        {
            var configPath = GatewayBench.WriteFullSizeConfig(configDir.FullName);
            var redis = await RedisServer.StartAsync();
            started.Add(redis);
            var common = FullSizeCluster.CommonEnvironment(configPath, redis.ConnectionString);
            // Two full-size decoders on one machine: 8 slots × 512 tokens each (0.8 GB of KV) hold every context here.
            common["Decoder__MaxRunning"] = "8";
            common["Decoder__MaxSequenceTokens"] = "512";
            var vision = Services.Start("vision-worker", "vision-worker", "Kosmos2.VisionWorker", new(common));
            started.Add(vision);
            var reuseDecoder = Services.Start("decoder-worker (reuse)", "decoder-worker", "Kosmos2.DecoderWorker", new(common));
            started.Add(reuseDecoder);
            var reprefillDecoder = Services.Start("decoder-worker (reprefill)", "decoder-worker", "Kosmos2.DecoderWorker",
                new(common) { ["Decoder__PrefixCacheSlots"] = "0" });
            started.Add(reprefillDecoder);
            await Services.WaitAsync(vision, reuseDecoder, reprefillDecoder);
            // Every image is encoded through the vision client before it is used, but under a heavy load even a cache
            // read can queue behind another encode: the gateway's 30 s bound is for serving, not for measuring.
            var reuseGateway = Services.Start("gateway (reuse)", "gateway", "Kosmos2.Gateway",
                new(ClusterEnvironment.Gateway(common, RepoPaths.GoldenModelDir, vision.Address, [reuseDecoder.Address])) { ["Gateway__VisionEncodeTimeoutMs"] = "600000" });
            started.Add(reuseGateway);
            var reprefillGateway = Services.Start("gateway (reprefill)", "gateway", "Kosmos2.Gateway",
                new(ClusterEnvironment.Gateway(common, RepoPaths.GoldenModelDir, vision.Address, [reprefillDecoder.Address])) { ["Gateway__VisionEncodeTimeoutMs"] = "600000" });
            started.Add(reprefillGateway);
            await Services.WaitAsync(reuseGateway, reprefillGateway);

            var paths = new Dictionary<string, GatewayClient>
            {
                ["reuse"] = new(reuseGateway.Channel),
                ["reprefill"] = new(reprefillGateway.Channel),
            };
            var visionClient = new VisionClient(vision.Channel);

            var lastTtft = paths.Keys.ToDictionary(p => p, _ => new List<double>());
            var grounding = paths.Keys.ToDictionary(p => p, _ => new List<double>());
            var ratios = new List<double>();
            var speedups = new List<double>();
            for (var rep = 0; rep < reps; rep++)
            {
                var order = rep % 2 == 0 ? new[] { "reuse", "reprefill" } : ["reprefill", "reuse"];
                var ttft = new Dictionary<string, double>();
                foreach (var path in order)
                {
                    // A fresh image per session: nothing of it is cached on either decoder before turn 1.
                    var image = RandomImages.Png(400, 300, seed: 500 + rep * 10 + (path == "reuse" ? 0 : 1));
                    await visionClient.EncodeAsync(new EncodeRequest { Image = ByteString.CopyFrom(image) }); // the encode is not what is measured
                    ttft[path] = await ChatAsync(paths[path], path, image, turns, answerTokens);
                    lastTtft[path].Add(ttft[path]);
                }
                ratios.Add(ttft["reuse"] / ttft["reprefill"]);

                var groundImage = RandomImages.Png(400, 300, seed: 900 + rep);
                await visionClient.EncodeAsync(new EncodeRequest { Image = ByteString.CopyFrom(groundImage) }); // both paths hit the embedding cache
                var seconds = new Dictionary<string, double>();
                foreach (var path in order)
                {
                    seconds[path] = await GroundAsync(paths[path], path, groundImage, phraseCount, phraseTokens);
                    grounding[path].Add(seconds[path]);
                }
                speedups.Add(seconds["reprefill"] / seconds["reuse"]);
            }

            figures.Add($"chat_turn{turns}_ttft_reuse_ms", Stats.Median(lastTtft["reuse"]), "ms");
            figures.Add($"chat_turn{turns}_ttft_reprefill_ms", Stats.Median(lastTtft["reprefill"]), "ms");
            figures.Add($"chat_turn{turns}_ttft_reuse_vs_reprefill", Stats.Median(ratios), "ratio (median of per-rep ratios; target ≤ 0.25)");
            figures.Add($"phrase_grounding_{phraseCount}_reuse_s", Stats.Median(grounding["reuse"]), "s");
            figures.Add($"phrase_grounding_{phraseCount}_reprefill_s", Stats.Median(grounding["reprefill"]), "s");
            figures.Add("phrase_grounding_reuse_speedup", Stats.Median(speedups), "× (median of per-rep ratios; target ≥ 2)");
            var info = await new DecoderWorker.DecoderWorkerClient(reuseDecoder.Channel).GetInfoAsync(new DecoderInfoRequest());
            Progress.Log($"reuse decoder's prefix cache: {info.PrefixCache}");
        }
        finally
        {
            started.Reverse();
            foreach (var service in started)
            {
                await service.DisposeAsync();
            }
            configDir.Delete(recursive: true);
        }
    }

    /// <summary>One session of <paramref name="turns"/> turns; returns the last turn's time to first token (gateway-measured, ms).</summary>
    private static async Task<double> ChatAsync(GatewayClient api, string path, byte[] image, int turns, int answerTokens)
    {
        var session = await api.CreateSessionAsync(new CreateSessionRequest
        {
            Image = new Contracts.V1.Image { Data = ByteString.CopyFrom(image) },
            Options = new SessionOptions { Grounding = true, Stopping = new StoppingParameters { MaxNewTokens = (uint)answerTokens } },
        });
        GenerateResult? result = null;
        for (var turn = 0; turn < turns; turn++)
        {
            var watch = Stopwatch.StartNew();
            using var call = api.SendTurn(new SendTurnRequest { SessionId = session.Id, Text = Questions[turn] });
            double firstMessageMs = 0;
            result = null;
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                if (firstMessageMs == 0)
                {
                    firstMessageMs = watch.Elapsed.TotalMilliseconds;
                }
                result ??= message.Result;
            }
            if (result is null)
            {
                throw new InvalidOperationException($"{path}: turn {turn + 1} ended without a result.");
            }
            Progress.Log($"{path,-9} turn {turn + 1}: prompt {result.Usage.PromptTokens} tokens ({result.Usage.CachedPromptTokens} reused), "
                + $"{result.Usage.GeneratedTokens} generated; time to first token {result.Timings.TimeToFirstTokenMs:F0} ms, total {watch.Elapsed.TotalMilliseconds:F0} ms; load {LoadAverage.Now()}");
        }
        return result!.Timings.TimeToFirstTokenMs;
    }

    /// <summary>One phrase-grounding request of <paramref name="count"/> phrases; returns its wall time in seconds.</summary>
    private static async Task<double> GroundAsync(GatewayClient api, string path, byte[] image, int count, int tokens)
    {
        var watch = Stopwatch.StartNew();
        var result = await GatewayBench.GatewayOnceAsync(api, new GenerateRequest
        {
            Image = new Contracts.V1.Image { Data = ByteString.CopyFrom(image) },
            Task = TaskKind.PhraseGrounding,
            Phrases = { Phrases.Take(count) },
            Stopping = new StoppingParameters { MaxNewTokens = (uint)tokens },
        });
        var seconds = watch.Elapsed.TotalSeconds;
        Progress.Log($"{path,-9} grounding of {count} phrases: prompt {result.Usage.PromptTokens} tokens ({result.Usage.CachedPromptTokens} reused), "
            + $"{result.Usage.GeneratedTokens} generated in {seconds:F2} s; load {LoadAverage.Now()}");
        return seconds;
    }
}
