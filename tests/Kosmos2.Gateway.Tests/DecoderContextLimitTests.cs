using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// A chat turn must fit the decoders' context (their <c>Decoder:MaxSequenceTokens</c>, learned from GetInfo), not only the
/// gateway's <c>Gateway:MaxSessionTokens</c>: a turn that can't fit is FAILED_PRECONDITION "start a new session" before any
/// decoding, and one that fits asks for no more new tokens than the room left.
/// </summary>
public sealed class DecoderContextLimitTests
{
    [Fact]
    public async Task A_turn_past_the_decoders_context_is_refused_before_decoding_and_one_that_fits_is_capped_to_it()
    {
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.StreamThree);
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
            ["Gateway:MaxSessionTokens"] = "4000",
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var session = await client.CreateSessionAsync(new CreateSessionRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 5)) },
        });
        var question = new SendTurnRequest { SessionId = session.Id, Text = "What is in the picture?", Stopping = new StoppingParameters { MaxNewTokens = 50 } };

        // Room for the question and a few tokens (its ids counted here with the same tokenizer, give or take the tags):
        // the first turn reaches the decoder asking for no more than fits; the second can't fit.
        var imageBlock = (int)session.ContextTokens;
        var questionTokens = Processing.Tokenization.Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir).Encode($"Question: {question.Text} Answer:").Length;
        var limit = imageBlock + questionTokens + 6;
        workers.MaxSequenceTokens = (uint)limit;
        await DrainAsync(client.SendTurn(question));
        var sent = workers.LastDecodeRequest!;
        Assert.Equal(limit, sent.InputIds.Count + (int)sent.Stopping.MaxNewTokens);
        Assert.True(sent.Stopping.MaxNewTokens < 50);

        // The context now fills the decoder's window: the next turn is refused before any decoder call.
        var calls = workers.Calls;
        var ex = await Assert.ThrowsAsync<RpcException>(() => DrainAsync(client.SendTurn(question)));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Contains($"the limit is {limit} (the decoders' Decoder:MaxSequenceTokens)", ex.Status.Detail);
        Assert.Contains("start a new session", ex.Status.Detail);
        Assert.Equal(calls, workers.Calls);
    }

    private static async Task DrainAsync(AsyncServerStreamingCall<GenerateResponse> call)
    {
        using (call)
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
        }
    }
}
