using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>Sessions are data, embeddings are cache: a session keeps what its next turn needs, so losing the whole
/// embedding cache never fails a turn, and a restart of the session Redis loses no session.</summary>
public sealed class SessionDurabilityTests
{
    private static readonly SessionOptions Greedy = new()
    {
        Grounding = true,
        Sampling = new SamplingParameters { Temperature = 0 },
        Stopping = new StoppingParameters { MaxNewTokens = 8 },
    };

    [Fact]
    public async Task A_turn_after_the_cache_redis_lost_every_key_gives_the_same_tokens()
    {
        // No in-process LRU in front of the cache Redis: flushing it empties every cache the vision worker has.
        var settings = new Dictionary<string, string>(ClusterFixture.ApiKeys) { ["Vision__Cache__LocalMaxBytes"] = "0" };
        await using var cluster = await LocalCluster.StartAsync(settings, separateCacheRedis: true);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
        var image = new Image { Data = ByteString.CopyFrom(await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath)) };
        const string first = "What is this?";
        const string second = "What is <phrase>it</phrase> next to?";

        // The reference: two turns with the cache intact.
        var reference = await client.CreateSessionAsync(new CreateSessionRequest { Image = image, Options = Greedy }, ClusterFixture.TenantA);
        await SendAsync(client, reference.Id, first);
        var expected = await SendAsync(client, reference.Id, second);

        var session = await client.CreateSessionAsync(new CreateSessionRequest { Image = image, Options = Greedy }, ClusterFixture.TenantA);
        await SendAsync(client, session.Id, first);

        Assert.True(await cluster.CacheRedis.DbSizeAsync() > 0, "The vision worker cached nothing: the flush below would prove nothing.");
        Assert.Equal("+OK", await cluster.CacheRedis.CommandAsync("FLUSHDB"));
        Assert.Equal(0, await cluster.CacheRedis.DbSizeAsync());
        // The image is gone from every cache: asking by hash alone now fails.
        var byHash = client.Generate(new GenerateRequest { Image = new Image { Sha256 = reference.ImageSha256 }, Task = TaskKind.BriefCaption }, ClusterFixture.TenantA);
        var gone = await Assert.ThrowsAsync<RpcException>(() => byHash.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);

        var actual = await SendAsync(client, session.Id, second);
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Text, actual.Text);
    }

    [Fact]
    public async Task A_session_continues_after_the_session_redis_restarts()
    {
        await using var cluster = await LocalCluster.StartAsync(ClusterFixture.ApiKeys);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
        var image = new Image { Data = ByteString.CopyFrom(await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath)) };
        var session = await client.CreateSessionAsync(new CreateSessionRequest { Image = image, Options = Greedy }, ClusterFixture.TenantA);
        var turn1 = await SendAsync(client, session.Id, "What is this?");

        // What Kubernetes does to the pod: SIGTERM, then a new process on the same volume.
        await cluster.Redis.StopAsync(graceful: true);
        Assert.False(cluster.Redis.IsRunning);
        await cluster.Redis.RestartAsync();

        var turn2 = await SendAsync(client, session.Id, "What is <phrase>it</phrase> next to?");
        Assert.Equal(1u, turn2.TurnIndex);
        var stored = await client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA);
        Assert.Equal(2, stored.Turns.Count);
        Assert.Equal(turn1.Usage.GeneratedTokens, stored.Turns[0].GeneratedTokens);
        Assert.Equal(session.ContextTokens + stored.Turns.Sum(t => t.PromptTokens + t.GeneratedTokens), stored.ContextTokens);
    }

    private static async Task<GenerateResult> SendAsync(Contracts.V1.Kosmos2.Kosmos2Client client, string sessionId, string text)
    {
        using var call = client.SendTurn(new SendTurnRequest { SessionId = sessionId, Text = text }, ClusterFixture.TenantA,
            deadline: DateTime.UtcNow.AddMinutes(2));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        Assert.NotNull(result);
        Assert.Equal(sessionId, result.SessionId);
        return result;
    }
}
