using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>When every decoder is full, the client gets RESOURCE_EXHAUSTED before any message, with the decoder's retry hint in the trailers.</summary>
public sealed class OverloadHintTests
{
    [Fact]
    public async Task A_full_cluster_answers_resource_exhausted_with_a_retry_after_hint()
    {
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.RefuseExhausted);
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        using var call = client.Generate(new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 2)) },
            Task = TaskKind.BriefCaption,
        });
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("3", ex.Trailers.GetValue("retry-after"));
        Assert.Equal("3000", ex.Trailers.GetValue("grpc-retry-pushback-ms"));
    }

    [Fact]
    public async Task When_the_decoders_places_are_taken_a_call_is_refused_before_its_image_is_encoded()
    {
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        workers.MaxRunning = 1;
        workers.MaxWaiting = 1;
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        GenerateRequest Request(int seed) => new()
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed)) },
            Task = TaskKind.BriefCaption,
        };

        using var first = client.Generate(Request(20), cancellationToken: timeout.Token);
        using var second = client.Generate(Request(21), cancellationToken: timeout.Token);
        Assert.True(await first.ResponseStream.MoveNext(timeout.Token));
        Assert.True(await second.ResponseStream.MoveNext(timeout.Token));
        var callsBefore = workers.Calls;
        using var third = client.Generate(Request(22), cancellationToken: timeout.Token);
        var ex = await Assert.ThrowsAsync<RpcException>(() => third.ResponseStream.MoveNext(timeout.Token));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.NotNull(ex.Trailers.GetValue("retry-after"));
        Assert.Equal(callsBefore, workers.Calls); // no encode, no decode for the refused call
        workers.ReleaseAll();
        await foreach (var _ in first.ResponseStream.ReadAllAsync(timeout.Token))
        {
        }
        await foreach (var _ in second.ResponseStream.ReadAllAsync(timeout.Token))
        {
        }
        // Places are given back when generations end.
        workers.Behavior = DecoderBehavior.StreamThree;
        using var after = client.Generate(Request(23), cancellationToken: timeout.Token);
        await foreach (var _ in after.ResponseStream.ReadAllAsync(timeout.Token))
        {
        }
    }

    [Fact]
    public async Task A_vision_queue_slower_than_the_encode_bound_is_resource_exhausted_with_a_hint_not_a_bare_deadline()
    {
        await using var workers = await FakeWorker.StartAsync();
        workers.EncodeDelay = TimeSpan.FromSeconds(3);
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
            ["Gateway:VisionEncodeTimeoutMs"] = "300",
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var request = new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 3)) },
            Task = TaskKind.BriefCaption,
        };

        using var call = client.Generate(request);
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("Gateway:VisionEncodeTimeoutMs", ex.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(ex.Trailers.GetValue("retry-after"));
        // The caller's own deadline passing stays DEADLINE_EXCEEDED.
        using var late = client.Generate(request, deadline: DateTime.UtcNow.AddMilliseconds(200));
        var own = await Assert.ThrowsAsync<RpcException>(() => late.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.DeadlineExceeded, own.StatusCode);
    }
}
