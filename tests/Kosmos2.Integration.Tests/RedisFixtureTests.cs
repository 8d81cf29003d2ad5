using StackExchange.Redis;

namespace Kosmos2.Integration.Tests;

/// <summary>The Redis fixture starts a real server, survives a stop/restart, and cleans up.</summary>
public sealed class RedisFixtureTests
{
    [Fact]
    public async Task Real_redis_server_starts_stores_values_and_restarts_empty()
    {
        await using var redis = await RedisServer.StartAsync();
        await using (var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            var db = connection.GetDatabase();
            await db.StringSetAsync("k", "v");
            Assert.Equal("v", (string?)await db.StringGetAsync("k"));
        }

        await redis.StopAsync();
        Assert.False(redis.IsRunning);
        await redis.RestartAsync();

        await using var again = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        Assert.False((await again.GetDatabase().StringGetAsync("k")).HasValue);
    }
}
