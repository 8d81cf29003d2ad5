using Grpc.Core;
using Kosmos2.Testing;
using StackExchange.Redis;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>The cluster-wide embedding cache against a real redis-server: hits, single flight, outages, damaged values.</summary>
public sealed class EmbeddingCacheTests
{
    /// <summary>Without the local LRU every hit below must come from Redis.</summary>
    private static readonly Dictionary<string, string> RedisOnly = new() { ["Vision__Cache__LocalMaxBytes"] = "0" };

    [Fact]
    public async Task Second_request_is_a_hit_with_identical_bytes_and_no_forward()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis);
        var image = TestImages.RandomPng(64, 48, seed: 1);

        var first = await worker.EncodeAsync(image);
        var forwards = (await worker.InfoAsync()).Forwards;
        var second = await worker.EncodeAsync(image);

        Assert.False(first.CacheHit);
        Assert.True(second.CacheHit);
        Assert.Equal(first.Embeddings.Data, second.Embeddings.Data);
        Assert.Equal(first.CacheKey, second.CacheKey);
        Assert.Equal(forwards, (await worker.InfoAsync()).Forwards);
    }

    [Fact]
    public async Task Concurrent_requests_for_one_new_image_run_exactly_one_forward()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis);
        var before = await worker.InfoAsync();
        var image = TestImages.RandomPng(320, 240, seed: 2);

        var replies = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => worker.EncodeAsync(image)));

        var after = await worker.InfoAsync();
        Assert.Equal(1ul, after.ImagesEncoded - before.ImagesEncoded);
        Assert.Equal(1ul, after.Forwards - before.Forwards);
        Assert.All(replies, r => Assert.Equal(replies[0].Embeddings.Data, r.Embeddings.Data));
    }

    [Fact]
    public async Task Redis_outage_slows_nothing_down_to_failure_and_hits_resume_after_restart()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis, RedisOnly);
        var image = TestImages.RandomPng(40, 40, seed: 3);
        await worker.EncodeAsync(image);
        Assert.True((await worker.EncodeAsync(image)).CacheHit);

        await redis.StopAsync();
        var duringOutage = await worker.EncodeAsync(image);
        Assert.False(duringOutage.CacheHit);
        Assert.False((await worker.EncodeAsync(TestImages.RandomPng(40, 40, seed: 4))).CacheHit);

        await redis.RestartAsync();
        await Poll.UntilAsync(async () =>
        {
            await worker.EncodeAsync(image);
            return (await worker.EncodeAsync(image)).CacheHit;
        }, TimeSpan.FromSeconds(30), "cache hits after Redis restarted");
        Assert.True((await worker.InfoAsync()).RedisHealthy);
    }

    [Fact]
    public async Task A_damaged_cache_value_is_detected_and_recomputed()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis, RedisOnly);
        var image = TestImages.RandomPng(50, 30, seed: 5);
        var original = await worker.EncodeAsync(image);

        await using (var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            var db = connection.GetDatabase();
            byte[] stored = (await db.StringGetAsync(original.CacheKey))!;
            stored[^7] ^= 0x5A; // flip bits in the payload, header intact
            await db.StringSetAsync(original.CacheKey, stored);
        }

        var afterDamage = await worker.EncodeAsync(image);
        Assert.False(afterDamage.CacheHit);
        Assert.Equal(original.Embeddings.Data, afterDamage.Embeddings.Data);
        Assert.True((await worker.EncodeAsync(image)).CacheHit);
    }

    [Fact]
    public async Task A_hash_alone_is_served_from_the_cache_and_an_unknown_hash_is_not_found()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis);
        var encoded = await worker.EncodeAsync(TestImages.RandomPng(20, 20, seed: 6));

        var byHash = await worker.Client.EncodeAsync(new Contracts.Internal.V1.EncodeRequest { Sha256 = encoded.Sha256 });
        Assert.True(byHash.CacheHit);
        Assert.Equal(encoded.Embeddings.Data, byHash.Embeddings.Data);

        var unknown = await Assert.ThrowsAsync<RpcException>(() =>
            worker.Client.EncodeAsync(new Contracts.Internal.V1.EncodeRequest { Sha256 = new string('a', 64) }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Salted_requests_use_their_own_cache_entries()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var worker = await VisionWorkerHost.StartAsync(redis);
        var image = TestImages.RandomPng(24, 24, seed: 7);

        var tenantA = await worker.EncodeAsync(image, salt: "tenant-a");
        var tenantB = await worker.EncodeAsync(image, salt: "tenant-b");

        Assert.NotEqual(tenantA.CacheKey, tenantB.CacheKey);
        Assert.False(tenantB.CacheHit);
        Assert.Equal(tenantA.Embeddings.Data, tenantB.Embeddings.Data);
    }
}
