using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Sessions;
using SessionOptions = Kosmos2.Contracts.V1.SessionOptions;

namespace Kosmos2.Gateway.Tests;

/// <summary>What every session store promises; run against Redis and the in-process store.</summary>
public abstract class SessionStoreContract
{
    protected static readonly GatewayOptions Limits = new() { SessionTtlSeconds = 3600, MaxSessionTurns = 3, MaxSessionTokens = 200 };

    protected abstract ISessionStore Store { get; }

    [Fact]
    public async Task A_session_is_created_read_extended_and_deleted()
    {
        var created = await Store.CreateAsync(NewSession("acme"));
        Assert.True(SessionIds.IsWellFormed(created.Id));
        Assert.Equal(0, created.Version);
        Assert.Equal([0, 64, 65], created.ContextTokenIds);

        var appended = await Store.AppendTurnAsync("acme", created.Id, 0, Turn("What is this?", [10, 11], [20, 21, 22], "10.0.0.7:50051"));
        Assert.Equal(1, appended.Version);
        Assert.Equal([0, 64, 65, 10, 11, 20, 21, 22], appended.ContextTokenIds);

        var read = await Store.GetAsync("acme", created.Id);
        Assert.NotNull(read);
        Assert.Equal(appended.ContextTokenIds, read.ContextTokenIds);
        Assert.Equal("10.0.0.7:50051", read.LastDecoderAddress);
        var turn = Assert.Single(read.Turns);
        Assert.Equal("What is this?", turn.Text);
        Assert.Equal("a snowman", turn.Entities[0].Phrase);
        Assert.Equal(0.25, turn.Entities[0].Boxes[0].Normalized.X2);
        Assert.Equal(BoxFrame.Pixels, turn.Regions[0].Frame);
        Assert.True(read.Options.Grounding);
        Assert.Equal(0.7f, read.Options.Sampling.Temperature);
        Assert.Equal(new SessionImage(new string('a', 64), 640, 480, "salt"), read.Image);

        var proto = read.ToProto();
        Assert.Equal(8u, proto.ContextTokens);
        Assert.Equal("a snowman", proto.Turns[0].Entities[0].Phrase);
        Assert.Equal(3u, proto.Turns[0].GeneratedTokens);

        Assert.True(await Store.DeleteAsync("acme", created.Id));
        Assert.Null(await Store.GetAsync("acme", created.Id));
        Assert.False(await Store.DeleteAsync("acme", created.Id));
    }

    [Fact]
    public async Task Another_tenants_session_looks_exactly_like_a_missing_one()
    {
        var created = await Store.CreateAsync(NewSession("acme"));

        Assert.Null(await Store.GetAsync("globex", created.Id));
        var foreign = await Assert.ThrowsAsync<RpcException>(() => Store.AppendTurnAsync("globex", created.Id, 0, Turn("hi", [1], [2])));
        var missingId = SessionIds.New();
        var missing = await Assert.ThrowsAsync<RpcException>(() => Store.AppendTurnAsync("globex", missingId, 0, Turn("hi", [1], [2])));
        Assert.False(await Store.DeleteAsync("globex", created.Id));

        Assert.Equal(StatusCode.NotFound, foreign.StatusCode);
        Assert.Equal(missing.Status.Detail.Replace(missingId, created.Id, StringComparison.Ordinal), foreign.Status.Detail);
        Assert.NotNull(await Store.GetAsync("acme", created.Id));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not-an-id")]
    [InlineData("../../../etc/passwd/xx")]
    public async Task Malformed_ids_are_not_found(string id)
    {
        Assert.Null(await Store.GetAsync("acme", id));
        Assert.False(await Store.DeleteAsync("acme", id));
    }

    [Fact]
    public async Task A_turn_beyond_the_turn_limit_is_rejected_and_the_session_is_unchanged()
    {
        var session = await Store.CreateAsync(NewSession("acme"));
        for (var i = 0; i < Limits.MaxSessionTurns; i++)
        {
            session = await Store.AppendTurnAsync("acme", session.Id, session.Version, Turn($"q{i}", [1], [2]));
        }

        var ex = Assert.Throws<RpcException>(() => SessionLimits.RoomForNewTokens(session, 2, 64, Limits));
        var backstop = await Assert.ThrowsAsync<RpcException>(() => Store.AppendTurnAsync("acme", session.Id, session.Version, Turn("one more", [1], [2])));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Contains("Session has 3 turns; the limit is 3 (Gateway:MaxSessionTurns): start a new session", ex.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, backstop.StatusCode);
        Assert.Equal(3, (await Store.GetAsync("acme", session.Id))!.Turns.Count);
    }

    [Fact]
    public async Task New_tokens_are_capped_to_the_room_left_and_a_full_context_is_rejected()
    {
        var session = await Store.CreateAsync(NewSession("acme")); // 3 context tokens, limit 200

        Assert.Equal(64, SessionLimits.RoomForNewTokens(session, 10, 64, Limits));
        Assert.Equal(7, SessionLimits.RoomForNewTokens(session, 190, 64, Limits));
        var ex = Assert.Throws<RpcException>(() => SessionLimits.RoomForNewTokens(session, 197, 64, Limits));
        var backstop = await Assert.ThrowsAsync<RpcException>(() =>
            Store.AppendTurnAsync("acme", session.Id, 0, Turn("long", [.. Enumerable.Range(0, 150)], [.. Enumerable.Range(0, 60)])));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Contains("Gateway:MaxSessionTokens", ex.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, backstop.StatusCode);
    }

    [Fact]
    public async Task Of_two_concurrent_turns_only_one_is_appended()
    {
        var session = await Store.CreateAsync(NewSession("acme"));

        var attempts = Enumerable.Range(0, 8)
            .Select(i => Task.Run(() => Store.AppendTurnAsync("acme", session.Id, session.Version, Turn($"turn {i}", [1], [2]))))
            .ToArray();
        var outcomes = await Task.WhenAll(attempts.Select(async t =>
        {
            try
            {
                await t;
                return StatusCode.OK;
            }
            catch (RpcException ex)
            {
                return ex.StatusCode;
            }
        }));

        Assert.Equal(1, outcomes.Count(s => s == StatusCode.OK));
        Assert.All(outcomes.Where(s => s != StatusCode.OK), s => Assert.Equal(StatusCode.Aborted, s));
        var final = await Store.GetAsync("acme", session.Id);
        Assert.Equal(1, final!.Version);
        Assert.Single(final.Turns);
        Assert.Equal(5, final.ContextTokenIds.Count);
    }

    [Fact]
    public async Task A_session_keeps_its_image_embeddings_through_its_turns_for_its_tenant_only()
    {
        var embeddings = new Kosmos2.Contracts.Internal.V1.TensorBytes
        {
            Dtype = Kosmos2.Contracts.Internal.V1.TensorDType.Bfloat16,
            Shape = { 2, 3 },
            Data = Google.Protobuf.ByteString.CopyFrom([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        };
        var session = await Store.CreateAsync(NewSession("acme") with { Embeddings = embeddings });
        Assert.Equal(embeddings, await Store.GetEmbeddingsAsync("acme", session.Id));

        await Store.AppendTurnAsync("acme", session.Id, 0, Turn("first", [1], [2]));
        Assert.Equal(embeddings, await Store.GetEmbeddingsAsync("acme", session.Id));
        Assert.Null(await Store.GetEmbeddingsAsync("other-tenant", session.Id));

        var without = await Store.CreateAsync(NewSession("acme"));
        Assert.Null(await Store.GetEmbeddingsAsync("acme", without.Id));
        Assert.True(await Store.DeleteAsync("acme", session.Id));
        Assert.Null(await Store.GetEmbeddingsAsync("acme", session.Id));
    }

    [Fact]
    public async Task A_stale_version_is_aborted_with_a_message_saying_to_resend()
    {
        var session = await Store.CreateAsync(NewSession("acme"));
        await Store.AppendTurnAsync("acme", session.Id, 0, Turn("first", [1], [2]));

        var ex = await Assert.ThrowsAsync<RpcException>(() => Store.AppendTurnAsync("acme", session.Id, 0, Turn("late", [1], [2])));

        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Contains("send this turn again", ex.Status.Detail);
    }

    /// <summary>A new session of <paramref name="tenant"/> as the contract's tests create it (for other test classes).</summary>
    internal static NewSession NewSessionFor(string tenant) => NewSession(tenant);

    protected static NewSession NewSession(string tenant) => new(
        tenant,
        new SessionImage(new string('a', 64), 640, 480, "salt"),
        new SessionOptions { Grounding = true, Sampling = new SamplingParameters { Temperature = 0.7f, Seed = 42 } },
        [0, 64, 65]);

    protected static NewTurn Turn(string text, int[] prompt, int[] generated, string? decoder = null) => new(
        new SessionTurn
        {
            Text = text,
            Regions = [new Region { Phrase = "it", Frame = BoxFrame.Pixels, Boxes = { new Box { X1 = 1, Y1 = 2, X2 = 30, Y2 = 40 } } }],
            Answer = "It is a snowman.",
            Entities =
            [
                new Entity
                {
                    Phrase = "a snowman", SpanStart = 6, SpanEnd = 15,
                    Boxes = { new GroundedBox { Normalized = new Box { X1 = 0.0, Y1 = 0.1, X2 = 0.25, Y2 = 0.5 }, PatchTopLeft = 96, PatchBottomRight = 519 } },
                },
            ],
            PromptTokens = prompt.Length,
            GeneratedTokens = generated.Length,
        },
        prompt, generated, decoder);
}
