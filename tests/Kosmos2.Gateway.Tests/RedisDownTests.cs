using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// With Redis out of reach, a session call is UNAVAILABLE (retry later) naming Redis and the request id, not INTERNAL:
/// the cause of the INTERNAL answers seen under hostile load while Redis restarted.
/// </summary>
public sealed class RedisDownTests
{
    [Fact]
    public async Task A_session_call_while_redis_is_down_is_unavailable_with_the_request_id()
    {
        await using var redis = await RedisServer.StartAsync();
        var address = redis.ConnectionString;
        await redis.StopAsync();
        await using var workers = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
            ["Redis:Sessions"] = address,
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.CreateSessionAsync(new CreateSessionRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 9)) },
        }).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Matches(@"^Redis \(sessions and caches\) is out of reach; retry shortly \(request .+\)\.$", ex.Status.Detail);
    }
}
