using Kosmos2.Gateway.Sessions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Kosmos2.Gateway.Tests;

/// <summary>Sessions in a real redis-server.</summary>
public sealed class RedisSessionStoreTests(RedisFixture redis) : SessionStoreContract, IClassFixture<RedisFixture>
{
    private readonly RedisSessionStore _store = new(redis.Connection, Options.Create(Limits), TimeProvider.System);

    protected override ISessionStore Store => _store;

    [Fact]
    public async Task The_session_key_has_the_prefix_and_the_ttl_and_a_turn_refreshes_the_ttl()
    {
        var session = await Store.CreateAsync(NewSession("acme"));
        var db = redis.Connection.GetDatabase();
        var key = (RedisKey)("kosmos2:session:" + session.Id);

        var ttl = await db.KeyTimeToLiveAsync(key);
        Assert.InRange(ttl!.Value.TotalSeconds, 3590, 3600);

        await db.KeyExpireAsync(key, TimeSpan.FromSeconds(30));
        var appended = await Store.AppendTurnAsync("acme", session.Id, 0, Turn("q", [1], [2]));

        Assert.InRange((await db.KeyTimeToLiveAsync(key))!.Value.TotalSeconds, 3590, 3600);
        Assert.True(appended.ExpiresAt > session.ExpiresAt);
    }

    [Fact]
    public async Task A_session_outlives_the_store_instance_that_wrote_it()
    {
        var session = await Store.CreateAsync(NewSession("acme"));
        await Store.AppendTurnAsync("acme", session.Id, 0, Turn("before restart", [1, 2], [3], "10.0.0.9:50051"));

        // A new connection and a new store: what a restarted gateway (or another replica) has.
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString);
        var restarted = new RedisSessionStore(connection, Options.Create(Limits), TimeProvider.System);
        var read = await restarted.GetAsync("acme", session.Id);

        Assert.NotNull(read);
        Assert.Equal("before restart", read.Turns[0].Text);
        Assert.Equal("10.0.0.9:50051", read.LastDecoderAddress);
        var next = await restarted.AppendTurnAsync("acme", session.Id, read.Version, Turn("after restart", [4], [5]));
        Assert.Equal(2, next.Version);
    }

    [Fact]
    public async Task The_gateway_uses_redis_when_it_is_configured()
    {
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["Redis:Sessions"] = redis.Server.ConnectionString });

        var store = gateway.Services.GetService(typeof(ISessionStore));

        Assert.IsType<RedisSessionStore>(store);
    }

    [Fact]
    public async Task The_gateway_falls_back_to_the_in_process_store_without_redis()
    {
        await using var gateway = await GatewayHost.StartAsync();

        Assert.IsType<InMemorySessionStore>(gateway.Services.GetService(typeof(ISessionStore)));
    }
}
