using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>Cancellation, deadlines, admission limits, seeded sampling, streaming shape.</summary>
public sealed class LifecycleTests
{
    private static DecodeRequest LongRequest(int maxNewTokens = 900)
    {
        var request = GoldenPrompts.Cases()[0].ToRequest(maxNewTokens);
        request.Stopping.IgnoreEos = true;
        return request;
    }

    [Fact]
    public async Task A_cancelled_stream_frees_its_slot_within_a_step()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        using var cts = new CancellationTokenSource();
        using var call = worker.Client.Generate(LongRequest(), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(1u, (await worker.InfoAsync()).KvSlotsInUse);

        cts.Cancel();

        await Poll.UntilAsync(async () => (await worker.InfoAsync()).KvSlotsInUse == 0, TimeSpan.FromSeconds(5), "the slot to be freed");
        var info = await worker.InfoAsync();
        Assert.Equal(0u, info.Running);
    }

    [Fact]
    public async Task An_expired_deadline_ends_the_request_and_frees_its_slot()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(LongRequest(), deadline: DateTime.UtcNow.AddMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        await Poll.UntilAsync(async () => (await worker.InfoAsync()).KvSlotsInUse == 0, TimeSpan.FromSeconds(5), "the slot to be freed");
    }

    [Fact]
    public async Task A_full_queue_answers_resource_exhausted_before_any_token()
    {
        await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string>
        {
            ["Decoder__MaxRunning"] = "1",
            ["Decoder__MaxWaiting"] = "1",
        });
        using var running = worker.Client.Generate(LongRequest());
        Assert.True(await running.ResponseStream.MoveNext(CancellationToken.None));
        using var waiting = worker.Client.Generate(LongRequest());
        await Poll.UntilAsync(async () => (await worker.InfoAsync()).Waiting == 1, TimeSpan.FromSeconds(5), "the second request to wait");

        using var refused = worker.Client.Generate(LongRequest());
        var ex = await Assert.ThrowsAsync<RpcException>(() => refused.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("queue is full", ex.Status.Detail);
        Assert.Equal("1", ex.Trailers.GetValue("retry-after"));
        Assert.Equal("1000", ex.Trailers.GetValue("grpc-retry-pushback-ms"));
    }

    [Fact]
    public async Task A_request_queued_past_the_queue_wait_bound_is_resource_exhausted_before_any_token()
    {
        await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string>
        {
            ["Decoder__MaxRunning"] = "1",
            ["Decoder__MaxQueueWaitMs"] = "300",
        });
        using var running = worker.Client.Generate(LongRequest());
        Assert.True(await running.ResponseStream.MoveNext(CancellationToken.None));

        using var queued = worker.Client.Generate(LongRequest());
        var ex = await Assert.ThrowsAsync<RpcException>(() => queued.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("Decoder:MaxQueueWaitMs", ex.Status.Detail);
        Assert.NotNull(ex.Trailers.GetValue("retry-after"));
        var info = await worker.InfoAsync();
        Assert.Equal((1u, 0u), (info.Running, info.Waiting)); // the running one goes on
    }

    [Fact]
    public async Task A_request_that_cannot_fit_the_context_is_invalid_before_any_token()
    {
        await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string> { ["Decoder__MaxSequenceTokens"] = "128" });
        var ex = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(LongRequest(200)));
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("128", ex.Status.Detail);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_exactly_and_another_seed_differs()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        DecodeRequest Sampled(ulong seed)
        {
            var request = LongRequest(40);
            request.Sampling = new DecodeSampling { Temperature = 1.0f, TopK = 50, TopP = 0.95f, RepetitionPenalty = 1.1f, Seed = seed };
            return request;
        }

        var first = await worker.GenerateAsync(Sampled(7));
        var again = await worker.GenerateAsync(Sampled(7));
        var other = await worker.GenerateAsync(Sampled(8));

        Assert.Equal(first.Tokens, again.Tokens);
        Assert.NotEqual(first.Tokens, other.Tokens);
    }

    [Fact]
    public async Task Tokens_stream_in_several_messages_and_the_final_carries_usage_and_timings()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        var prompt = GoldenPrompts.Cases()[0];
        var (tokens, final, messages) = await worker.GenerateAsync(LongRequest(30));

        Assert.Equal(30, tokens.Count);
        Assert.True(messages > 1);
        Assert.Equal(DecodeFinishReason.Length, final.FinishReason);
        Assert.Equal((uint)prompt.InputIds.Length, final.Usage.PromptTokens);
        Assert.Equal(30u, final.Usage.GeneratedTokens);
        Assert.True(final.Timings.TtftMs > 0);
        Assert.True(final.Timings.PrefillMs > 0);
    }

    [Fact]
    public async Task Malformed_requests_are_invalid_argument_and_the_worker_keeps_serving()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        var bad = new List<DecodeRequest>();
        var outOfVocab = LongRequest(5);
        outOfVocab.InputIds[3] = 999_999;
        bad.Add(outOfVocab);
        var noTokens = LongRequest(5);
        noTokens.Stopping.MaxNewTokens = 0;
        bad.Add(noTokens);
        var wrongShape = LongRequest(5);
        wrongShape.ImageEmbeddings.Shape[1] = 7;
        bad.Add(wrongShape);
        var empty = new DecodeRequest { Stopping = new DecodeStopping { MaxNewTokens = 3 } };
        bad.Add(empty);

        foreach (var request in bad)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(request));
            Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        }
        var (tokens, _, _) = await worker.GenerateAsync(LongRequest(3));
        Assert.Equal(3, tokens.Count);
    }

    [Fact]
    public async Task Health_reports_not_serving_while_work_is_pending_and_the_loop_counts_as_stalled()
    {
        // A stall timeout of 0 s makes any pending work count as "not advanced in time": health must follow the
        // engine's progress probe, NOT_SERVING while it trips and SERVING again once the work is done.
        await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string> { ["Decoder__StallTimeoutSeconds"] = "0" });
        var health = new Grpc.Health.V1.Health.HealthClient(worker.Process.Channel);
        using var call = worker.Client.Generate(LongRequest(200));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        var during = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing, during.Status);

        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
        }
        await Poll.UntilAsync(async () => (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status
            == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, TimeSpan.FromSeconds(10), "SERVING after the work drained");
    }
}
