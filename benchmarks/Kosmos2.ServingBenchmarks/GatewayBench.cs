using System.Diagnostics;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Model;
using Kosmos2.Processing.Prompts;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Launch;
using DecoderClient = Kosmos2.Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient;
using GatewayClient = Kosmos2.Contracts.V1.Kosmos2.Kosmos2Client;
using VisionClient = Kosmos2.Contracts.Internal.V1.VisionWorker.VisionWorkerClient;

namespace Kosmos2.ServingBenchmarks;

/// <summary>
/// `gateway`: the same concurrent streams through the gateway (vision cache hit, tokenization, detokenization, streaming
/// grounding parser) and straight to the decoder worker, alternating, in one run. The model is the full-size
/// architecture with the golden tokenizer's 2,037-token vocabulary, so the gateway's tokenizer matches it.
/// </summary>
internal static class GatewayBench
{
    public static async Task RunAsync(BenchOptions options, Figures figures)
    {
        var streams = options.Int("streams", 8);
        var tokens = options.Int("tokens", 32);
        var reps = options.Int("reps", 5);
        var promptText = options.String("prompt", "<grounding>An image of");
        Progress.Log($"sizing: {streams} concurrent streams × {tokens} new tokens (greedy), {reps} reps per path, alternating; prompt '{promptText}'");

        await using var cluster = await FullSizeCluster.StartAsync();
        var (vision, decoder, gateway) = (cluster.Vision, cluster.Decoder, cluster.Gateway);
        var api = new GatewayClient(gateway.Channel);
        var decoderClient = new DecoderClient(decoder.Channel);
        var image = RandomImages.Png(400, 300, seed: 77);
        var publicRequest = new GenerateRequest
        {
            Image = new Contracts.V1.Image { Data = ByteString.CopyFrom(image) },
            Prompt = promptText,
            Stopping = new StoppingParameters { MaxNewTokens = (uint)tokens },
        };

        // The direct request is what the gateway sends: the same prompt ids and the same (cached) embeddings.
        var probe = await GatewayOnceAsync(api, publicRequest);
        var embeddings = (await new VisionClient(vision.Channel).EncodeAsync(new EncodeRequest { Image = ByteString.CopyFrom(image) })).Embeddings;
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        var ids = PromptBuilder.Build(promptText, null, text => tokenizer.Encode(text)).InputIds;
        var direct = new DecodeRequest
        {
            RequestId = "bench-direct",
            ImageEmbeddings = embeddings,
            ImageOffset = PromptBuilder.ImageOffset,
            Stopping = new DecodeStopping { MaxNewTokens = (uint)tokens },
        };
        direct.InputIds.Add(ids.Select(i => (uint)i));
        var directProbe = await DecoderBench.RunStreamAsync(decoderClient, direct, Stopwatch.StartNew());
        Progress.Log($"probe: gateway {probe.Usage.GeneratedTokens} tokens ({probe.FinishReason}, prompt {probe.Usage.PromptTokens} tokens), "
            + $"direct {directProbe.Tokens} tokens (prompt {ids.Length} tokens)");
        if (probe.Usage.GeneratedTokens != directProbe.Tokens || probe.Usage.PromptTokens != ids.Length)
        {
            throw new InvalidOperationException("The two paths do not run the same workload: compare the prompt ids.");
        }
        if (probe.Usage.GeneratedTokens < tokens)
        {
            Progress.Log($"note: greedy output of the random model hits </s> after {probe.Usage.GeneratedTokens} tokens; both paths stop there");
        }

        var gatewayRates = new List<double>();
        var directRates = new List<double>();
        for (var rep = 0; rep < reps; rep++)
        {
            // Alternate which path goes first, so a drift in machine load does not favour one.
            var order = rep % 2 == 0 ? new[] { "gateway", "direct" } : ["direct", "gateway"];
            foreach (var path in order)
            {
                var watch = Stopwatch.StartNew();
                int total;
                if (path == "gateway")
                {
                    var results = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => GatewayOnceAsync(api, publicRequest)));
                    total = results.Sum(r => (int)r.Usage.GeneratedTokens);
                }
                else
                {
                    var clock = Stopwatch.StartNew();
                    var traces = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => DecoderBench.RunStreamAsync(decoderClient, direct, clock)));
                    total = traces.Sum(t => t.Tokens);
                }
                var rate = total / watch.Elapsed.TotalSeconds;
                (path == "gateway" ? gatewayRates : directRates).Add(rate);
                Progress.Log($"rep {rep + 1}/{reps} {path,-7}: {total} tokens in {watch.Elapsed.TotalSeconds:F2} s = {rate:F2} tok/s; load {LoadAverage.Now()}");
            }
        }
        figures.Add("gateway_tokens_per_s", Stats.Median(gatewayRates), "tok/s");
        figures.Add("direct_tokens_per_s", Stats.Median(directRates), "tok/s");
        // Paired per round (the two paths ran back to back): load swings between rounds cancel out of each ratio.
        figures.Add("gateway_vs_direct", Stats.Median(gatewayRates.Zip(directRates, (g, d) => g / d * 100)), "% (median of per-round ratios)");
    }

    /// <summary>One public Generate to its end; returns the final result.</summary>
    internal static async Task<GenerateResult> GatewayOnceAsync(GatewayClient api, GenerateRequest request)
    {
        using var call = api.Generate(request);
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        return result ?? throw new InvalidOperationException("The gateway stream ended without a result.");
    }

    /// <summary>golden/model/config.json with the text and vision dimensions of the published model (vocabulary kept).</summary>
    internal static string WriteFullSizeConfig(string directory)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.GoldenModelDir, "config.json")))!.AsObject();
        var full = Kosmos2Config.Default;
        var text = root["text_config"]!.AsObject();
        foreach (var alias in new[] { "hidden_size", "num_hidden_layers", "num_attention_heads" })
        {
            text.Remove(alias);
        }
        text["embed_dim"] = full.Text.EmbedDim;
        text["layers"] = full.Text.Layers;
        text["attention_heads"] = full.Text.AttentionHeads;
        text["ffn_dim"] = full.Text.FfnDim;
        text["max_position_embeddings"] = full.Text.MaxPositionEmbeddings;
        var vision = root["vision_config"]!.AsObject();
        vision["hidden_size"] = full.Vision.HiddenSize;
        vision["intermediate_size"] = full.Vision.IntermediateSize;
        vision["num_hidden_layers"] = full.Vision.NumHiddenLayers;
        vision["num_attention_heads"] = full.Vision.NumAttentionHeads;
        vision["image_size"] = full.Vision.ImageSize;
        vision["patch_size"] = full.Vision.PatchSize;
        root["latent_query_num"] = full.LatentQueryNum;
        var path = Path.Combine(directory, "config.json");
        File.WriteAllText(path, root.ToJsonString());
        var check = Kosmos2Config.Load(path);
        if ((check.Text.EmbedDim, check.Text.Layers, check.Text.AttentionHeads, check.Text.FfnDim) != (full.Text.EmbedDim, full.Text.Layers, full.Text.AttentionHeads, full.Text.FfnDim)
            || (check.Vision.HiddenSize, check.Vision.NumHiddenLayers, check.Vision.IntermediateSize, check.Vision.NumPatches) != (full.Vision.HiddenSize, full.Vision.NumHiddenLayers, full.Vision.IntermediateSize, full.Vision.NumPatches))
        {
            throw new InvalidOperationException($"The written config is not full size: {check}");
        }
        return path;
    }
}
