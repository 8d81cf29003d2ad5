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
