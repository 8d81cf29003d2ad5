using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Validation;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// The public side of log-probabilities and the grounding constraint: the gateway passes the options to the decoder,
/// sends every token's log-probability once, in order, and gives each generated box the mean of its patch tokens'.
/// The real gateway (golden tokenizer) over a decoder that streams a scripted caption.
/// </summary>
public sealed class LogprobStreamTests
{
    [Fact]
    public async Task Every_token_carries_its_logprob_once_and_each_box_the_mean_of_its_patch_tokens()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        int[] caption =
        [
            .. tokenizer.Encode(" two"),
            tokenizer.PhraseStartId, .. tokenizer.Encode(" cats"), tokenizer.PhraseEndId,
            tokenizer.ObjectStartId, tokenizer.PatchIndexId(3), tokenizer.PatchIndexId(900), tokenizer.DelimiterId,
            tokenizer.PatchIndexId(40), tokenizer.PatchIndexId(41), tokenizer.ObjectEndId,
            .. tokenizer.Encode(" play"),
            Kosmos2Tokenizer.EosId,
        ];
        await using var scripted = await ScriptedGateway.StartAsync(caption);
        var (workers, client) = (scripted.Workers, scripted.Client);

        var events = await GenerateAsync(client, new SamplingParameters { ConstrainGrounding = true, ReturnLogprobs = true, TopLogprobs = 1 });

        Assert.True(workers.LastSampling is { ConstrainGrounding: true, ReturnLogprobs: true, TopLogprobs: 1 });
        var result = Assert.Single(events, e => e.Result is not null).Result;
        var deltas = events.Where(e => e.Delta is not null).Select(e => e.Delta).ToList();
        Assert.Equal(caption.Select(id => (uint)id), deltas.SelectMany(d => d.TokenIds)); // each token exactly once, in order
        Assert.All(deltas, d => Assert.Equal(d.TokenIds, d.Logprobs.Select(l => l.TokenId)));
        var streamed = deltas.SelectMany(d => d.Logprobs).ToList();
        Assert.Equal(Enumerable.Range(0, caption.Length).Select(FakeWorker.ScriptLogprob), streamed.Select(l => l.Logprob));
        Assert.Equal(streamed, result.TokenLogprobs);
        Assert.Equal(tokenizer.IdToToken(tokenizer.ObjectStartId), result.TokenLogprobs[caption.ToList().IndexOf(tokenizer.ObjectStartId)].Token);
        Assert.All(result.TokenLogprobs, l => Assert.Equal(l.TokenId, Assert.Single(l.Top).TokenId));

        var at = caption.ToList();
        var expected = new[]
        {
            (FakeWorker.ScriptLogprob(at.IndexOf(tokenizer.PatchIndexId(3))) + FakeWorker.ScriptLogprob(at.IndexOf(tokenizer.PatchIndexId(900)))) / 2,
            (FakeWorker.ScriptLogprob(at.IndexOf(tokenizer.PatchIndexId(40))) + FakeWorker.ScriptLogprob(at.IndexOf(tokenizer.PatchIndexId(41)))) / 2,
        };
        var entity = Assert.Single(events, e => e.Entity is not null).Entity;
        Assert.Equal("cats", entity.Phrase);
        Assert.Equal(expected, entity.Boxes.Select(b => b.MeanLogprob));
        Assert.Equal(entity, Assert.Single(result.Entities));
    }

    [Fact]
    public async Task Without_return_logprobs_nothing_changes_in_the_stream()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        int[] caption = [tokenizer.ObjectStartId, tokenizer.PatchIndexId(3), tokenizer.PatchIndexId(900), tokenizer.ObjectEndId, .. tokenizer.Encode(" play"), Kosmos2Tokenizer.EosId];
        await using var scripted = await ScriptedGateway.StartAsync(caption);
        var (workers, client) = (scripted.Workers, scripted.Client);

        var events = await GenerateAsync(client, null);

        Assert.False(workers.LastSampling!.ReturnLogprobs);
        Assert.All(events.Where(e => e.Delta is not null), e => Assert.Empty(e.Delta.Logprobs));
        Assert.DoesNotContain(events, e => e.Delta is { Text: "", TokenIds.Count: > 0 }); // no empty carrier deltas
        var result = Assert.Single(events, e => e.Result is not null).Result;
        Assert.Empty(result.TokenLogprobs);
        Assert.All(result.Entities.SelectMany(e => e.Boxes), b => Assert.False(b.HasMeanLogprob));
    }

    [Fact]
    public async Task Phrase_grounding_of_several_phrases_gives_every_token_and_every_box_its_logprob()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        var answer = OneBox(tokenizer);
        await using var scripted = await ScriptedGateway.StartAsync(answer);
        var client = scripted.Client;
        var request = new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 5)) },
            Task = TaskKind.PhraseGrounding,
            Phrases = { "a cat", "a dog" },
            Sampling = new SamplingParameters { ConstrainGrounding = true, ReturnLogprobs = true },
        };

        var events = await ReadAllAsync(client.Generate(request));

        var result = Assert.Single(events, e => e.Result is not null).Result;
        var deltas = events.Where(e => e.Delta is not null).Select(e => e.Delta).ToList();
        Assert.Equal(result.TokenIds, deltas.SelectMany(d => d.TokenIds)); // each phrase's tokens, streamed once, in phrase order
        Assert.Equal(result.TokenLogprobs, deltas.SelectMany(d => d.Logprobs));
        Assert.Equal(2 * answer.Length, result.TokenLogprobs.Count);
        Assert.Equal(2, result.Entities.Count);
        Assert.All(result.Entities, e => Assert.Equal((FakeWorker.ScriptLogprob(1) + FakeWorker.ScriptLogprob(2)) / 2, Assert.Single(e.Boxes).MeanLogprob));
    }

    [Fact]
    public async Task Chat_session_options_carry_the_constraint_and_log_probabilities_to_each_turn()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        var answer = OneBox(tokenizer);
        await using var scripted = await ScriptedGateway.StartAsync(answer);
        var (workers, client) = (scripted.Workers, scripted.Client);
        var session = await client.CreateSessionAsync(new CreateSessionRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 4)) },
            Options = new SessionOptions { Grounding = true, Sampling = new SamplingParameters { ConstrainGrounding = true, ReturnLogprobs = true } },
        });

        var events = await ReadAllAsync(client.SendTurn(new SendTurnRequest { SessionId = session.Id, Text = "Where is it?" }));

        Assert.True(workers.LastSampling is { ConstrainGrounding: true, ReturnLogprobs: true });
        var result = Assert.Single(events, e => e.Result is not null).Result;
        Assert.Equal(answer.Length, result.TokenLogprobs.Count);
        var box = Assert.Single(Assert.Single(result.Entities).Boxes);
        Assert.Equal((FakeWorker.ScriptLogprob(1) + FakeWorker.ScriptLogprob(2)) / 2, box.MeanLogprob);
        var refused = Assert.Throws<RpcException>(() => client.CreateSession(new CreateSessionRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 4)) },
            Options = new SessionOptions { Sampling = new SamplingParameters { ReturnLogprobs = true, TopLogprobs = 6 } },
        }));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
    }

    [Theory]
    [InlineData(6u, true, "at most 5")]
    [InlineData(100u, true, "at most 5")]
    [InlineData(2u, false, "needs sampling.return_logprobs")]
    public void Top_logprobs_over_five_or_without_return_logprobs_are_invalid_arguments(uint top, bool returnLogprobs, string why)
    {
        var sampling = new SamplingParameters { TopLogprobs = top, ReturnLogprobs = returnLogprobs };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateSampling(sampling, new GatewayOptions()));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("sampling.top_logprobs", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(why, ex.Status.Detail, StringComparison.Ordinal);
        RequestValidator.ValidateSampling(new SamplingParameters { TopLogprobs = 5, ReturnLogprobs = true, ConstrainGrounding = true }, new GatewayOptions());
    }

    /// <summary>A box and the end: <c>&lt;object&gt;</c>, patches 3 and 900, <c>&lt;/object&gt;</c>, <c>&lt;/s&gt;</c>.</summary>
    private static int[] OneBox(Kosmos2Tokenizer tokenizer) =>
        [tokenizer.ObjectStartId, tokenizer.PatchIndexId(3), tokenizer.PatchIndexId(900), tokenizer.ObjectEndId, Kosmos2Tokenizer.EosId];

    private static async Task<List<GenerateResponse>> GenerateAsync(Contracts.V1.Kosmos2.Kosmos2Client client, SamplingParameters? sampling) =>
        await ReadAllAsync(client.Generate(new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 3)) },
            Prompt = "<grounding>An image of",
            Sampling = sampling,
        }));

    private static async Task<List<GenerateResponse>> ReadAllAsync(AsyncServerStreamingCall<GenerateResponse> call)
    {
        using (call)
        {
            var events = new List<GenerateResponse>();
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                events.Add(message);
            }
            return events;
        }
    }

    /// <summary>The real gateway (golden tokenizer) over a fake worker pair whose decoder streams <c>tokens</c>.</summary>
    private sealed class ScriptedGateway : IAsyncDisposable
    {
        private GatewayHost? _gateway;

        private ScriptedGateway(FakeWorker workers) => Workers = workers;

        public FakeWorker Workers { get; }

        public Contracts.V1.Kosmos2.Kosmos2Client Client { get; private set; } = null!;

        public static async Task<ScriptedGateway> StartAsync(int[] tokens)
        {
            var scripted = new ScriptedGateway(await FakeWorker.StartAsync(DecoderBehavior.Script));
            scripted.Workers.Script = tokens.Select(id => (uint)id).ToArray();
            scripted._gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
            {
                ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
                ["Gateway:VisionWorkers"] = scripted.Workers.Url,
                ["Gateway:DecoderWorkers"] = scripted.Workers.Url,
            });
            scripted.Client = new Contracts.V1.Kosmos2.Kosmos2Client(scripted._gateway.Channel);
            return scripted;
        }

        public async ValueTask DisposeAsync()
        {
            if (_gateway is not null)
            {
                await _gateway.DisposeAsync();
            }
            await Workers.DisposeAsync();
        }
    }
}
