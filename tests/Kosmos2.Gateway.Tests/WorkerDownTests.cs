using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// A pool whose workers are all gone answers UNAVAILABLE within Gateway:WorkerReadyWaitMs, not after the call's whole
/// deadline (the resilience suite saw a caption held 30 s while the vision worker was down).
/// </summary>
public sealed class WorkerDownTests
{
    [Fact]
    public async Task With_the_vision_worker_gone_a_request_fails_fast_with_unavailable()
    {
        var vision = await FakeWorker.StartAsync();
        await using var decoder = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = vision.Url,
            ["Gateway:DecoderWorkers"] = decoder.Url,
            ["Gateway:WorkerReadyWaitMs"] = "1000",
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        Assert.Equal(StatusCode.OK, await CaptionAsync(client));

        await vision.DisposeAsync();
        var watch = Stopwatch.StartNew();
        var status = await CaptionAsync(client);

        Assert.Equal(StatusCode.Unavailable, status);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"answered after {watch.Elapsed.TotalSeconds:F1} s");
    }

    private static async Task<StatusCode> CaptionAsync(Contracts.V1.Kosmos2.Kosmos2Client client)
    {
        try
        {
            using var call = client.Generate(new GenerateRequest
            {
                Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 8)) },
                Task = TaskKind.BriefCaption,
            }, deadline: DateTime.UtcNow.AddSeconds(60));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }
}
