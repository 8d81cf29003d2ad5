using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// The decoder's prefix cache seen from a client: a chat turn reuses its previous turn's KV rows and says so in
/// <c>usage.cached_prompt_tokens</c>, with the tokens of a cold run; phrase grounding prefills its image prefix once; and
/// two gateways serving alternate turns of one session both send them to the decoder that holds the prefix (the
/// affinity is read from the session in Redis).
/// </summary>
public sealed class PrefixReuseTests
{
    private static readonly SessionOptions Greedy = new()
    {
        Grounding = true,
        Sampling = new SamplingParameters { Temperature = 0 },
        Stopping = new StoppingParameters { MaxNewTokens = 8 },
    };

    private static readonly string[] Questions = ["What is this?", "What is <phrase>it</phrase> next to?", "Why?", "And then?"];

    /// <summary>
    /// What a turn can reuse of the one before: every token the decoder wrote for it, which is its whole context unless
    /// the answer stopped at max_new_tokens, whose last token was sampled but never fed (after an <c>&lt;/s&gt;</c>, left
    /// out of the context, it is the whole context).
    /// </summary>
    private static uint Reusable(uint contextAfter, GenerateResult previous) =>
        previous.FinishReason == Contracts.V1.FinishReason.Eos ? contextAfter : contextAfter - 1;

    [Fact]
    public async Task Turn_two_reuses_turn_one_whole_and_gives_the_tokens_of_a_cold_run_and_phrases_share_the_image_prefix()
    {
        await using var cluster = await LocalCluster.StartAsync(ClusterFixture.ApiKeys);
        await using var cold = await ServiceProcess.StartHealthyAsync("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"),
            new Dictionary<string, string>
            {
                ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
                ["Decoder__DType"] = "float32",
                ["Decoder__Device"] = "cpu",
                ["Decoder__PrefixCacheSlots"] = "0",
            }, TimeSpan.FromSeconds(120));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
        var png = await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath);
        var image = new Contracts.V1.Image { Data = ByteString.CopyFrom(png) };

        var session = await client.CreateSessionAsync(new CreateSessionRequest { Image = image, Options = Greedy }, ClusterFixture.TenantA);
        var turn1 = await SendAsync(client, session.Id, Questions[0]);
        var afterTurn1 = await client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA);
        var turn2 = await SendAsync(client, session.Id, Questions[1]);

        Assert.Equal(Reusable(afterTurn1.ContextTokens, turn1), turn2.Usage.CachedPromptTokens);
        Assert.True(turn2.Usage.CachedPromptTokens < turn2.Usage.PromptTokens);

        // The same context prefilled from scratch by a decoder without the cache gives the same tokens.
        var embeddings = await new VisionWorker.VisionWorkerClient(cluster.Vision.Channel).EncodeAsync(new EncodeRequest { Image = image.Data });
        var request = new DecodeRequest
        {
            RequestId = "cold",
            ImageEmbeddings = embeddings.Embeddings,
            ImageOffset = 2, // <s> <image>, then the image positions
            Stopping = new DecodeStopping { MaxNewTokens = Greedy.Stopping.MaxNewTokens },
        };
        request.InputIds.Add(turn2.PromptTokenIds);
        var reference = new List<uint>();
        DecodeFinal? final = null;
        using (var call = new DecoderWorker.DecoderWorkerClient(cold.Channel).Generate(request))
        {
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                reference.AddRange(message.TokenIds);
                final ??= message.Final;
            }
        }
        Assert.Equal(0u, final!.Usage.CachedPromptTokens);
        Assert.Equal(reference, turn2.TokenIds);

        // Phrase grounding: one prompt per phrase over one image, batched; the image block is prefilled at most once.
        string[] phrases = ["a shape", "the corner", "a line", "the middle"];
        var grounded = await GenerateAsync(client, new GenerateRequest { Image = image, Task = TaskKind.PhraseGrounding, Phrases = { phrases } });
        var imageBlock = 3 + GoldenModel.LatentQueryNum(); // <s> <image> placeholders </image>
        Assert.True(grounded.Usage.CachedPromptTokens >= (phrases.Length - 1) * imageBlock,
            $"{grounded.Usage.CachedPromptTokens} prompt tokens reused of {grounded.Usage.PromptTokens}; each phrase after the first should reuse the {imageBlock}-token image block");

        var info = await new DecoderWorker.DecoderWorkerClient(cluster.Decoder.Channel).GetInfoAsync(new DecoderInfoRequest());
        Assert.True(info.PrefixCache.Hits >= (ulong)phrases.Length);
        Assert.True(info.PrefixCache.TokensSaved >= turn2.Usage.CachedPromptTokens + grounded.Usage.CachedPromptTokens);
    }

    [Fact]
    public async Task Two_gateways_serving_alternate_turns_of_a_session_both_reach_the_decoder_holding_its_prefix()
    {
        await using var redis = await RedisServer.StartAsync(persistent: true, password: null);
        var common = ClusterEnvironment.Common(RepoPaths.GoldenModelDir, "float32", redis.ConnectionString, redis.ConnectionString);
        common["Vision__Device"] = "cpu";
        common["Decoder__Device"] = "cpu";
        await using var vision = ServiceProcess.Start("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), common);
        await using var decoderA = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), common);
        await using var decoderB = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), common);
        var gatewayEnvironment = new Dictionary<string, string>(ClusterEnvironment.Gateway(common, RepoPaths.GoldenModelDir, vision.Address, [decoderA.Address, decoderB.Address]));
        foreach (var (key, value) in ClusterFixture.ApiKeys)
        {
            gatewayEnvironment[key] = value;
        }
        await using var gateway1 = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), gatewayEnvironment);
        await using var gateway2 = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), gatewayEnvironment);
        await Task.WhenAll(new[] { vision, decoderA, decoderB, gateway1, gateway2 }.Select(p => p.WaitHealthyAsync(TimeSpan.FromSeconds(120))));
        var clients = new[] { gateway1, gateway2 }.Select(g => new Contracts.V1.Kosmos2.Kosmos2Client(g.Channel)).ToArray();
        var image = new Contracts.V1.Image { Data = ByteString.CopyFrom(await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath)) };

        var session = await clients[0].CreateSessionAsync(new CreateSessionRequest { Image = image, Options = Greedy }, ClusterFixture.TenantA);
        GenerateResult? previous = null;
        for (var turn = 0; turn < Questions.Length; turn++)
        {
            var before = await clients[turn % 2].GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA);
            var result = await SendAsync(clients[turn % 2], session.Id, Questions[turn]);
            if (previous is not null)
            {
                Assert.True(Reusable(before.ContextTokens, previous) == result.Usage.CachedPromptTokens,
                    $"turn {turn} through gateway {turn % 2 + 1}: {result.Usage.CachedPromptTokens} prompt tokens reused, {Reusable(before.ContextTokens, previous)} expected (the previous turn's context)");
            }
            previous = result;
        }

        // One decoder served the whole session; the other saw none of it.
        var steps = await Task.WhenAll(new[] { decoderA, decoderB }.Select(async d =>
            (await new DecoderWorker.DecoderWorkerClient(d.Channel).GetInfoAsync(new DecoderInfoRequest())).PrefixCache.Hits));
        Assert.Contains((ulong)(Questions.Length - 1), steps);
    }

    private static async Task<GenerateResult> SendAsync(Contracts.V1.Kosmos2.Kosmos2Client client, string sessionId, string text)
    {
        using var call = client.SendTurn(new SendTurnRequest { SessionId = sessionId, Text = text }, ClusterFixture.TenantA,
            deadline: DateTime.UtcNow.AddMinutes(2));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        Assert.NotNull(result);
        return result;
    }

    private static async Task<GenerateResult> GenerateAsync(Contracts.V1.Kosmos2.Kosmos2Client client, GenerateRequest request)
    {
        using var call = client.Generate(request, ClusterFixture.TenantA, deadline: DateTime.UtcNow.AddMinutes(2));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        Assert.NotNull(result);
        return result;
    }
}
