using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Gateway.Routing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Tests;

/// <summary>The worker pools against real gRPC servers on loopback.</summary>
public sealed class RoutingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Long_streams_spread_over_decoders_by_in_flight_count()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        await using var b = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        await using var c = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        using var pool = DecoderPoolFor(a, b, c);
        await WaitReadyAsync(pool, 3);

        // Two long streams pinned on a (affinity), then four more: counting puts them all on b and c,
        // where round robin would have given a a third.
        var streams = new List<DecoderGeneration>
        {
            await pool.GenerateAsync(Request(), a.Address, Deadline()),
            await pool.GenerateAsync(Request(), a.Address, Deadline()),
        };
        for (var i = 0; i < 4; i++)
        {
            streams.Add(await pool.GenerateAsync(Request(), null, Deadline()));
        }

        Assert.Equal([2, 2, 2], new[] { a.Active, b.Active, c.Active });
        Assert.Equal(6, streams.Select(s => s.Address).Count(addr => addr is not null));
        foreach (var s in streams)
        {
            s.Dispose();
        }
    }

    [Fact]
    public async Task Finished_streams_no_longer_count_against_their_decoder()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.StreamThree);
        await using var b = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        using var pool = DecoderPoolFor(a, b);
        await WaitReadyAsync(pool, 2);

        // Short streams on a finish and release their count; the held one on b keeps its count,
        // so every later call prefers a.
        using var held = await pool.GenerateAsync(Request(), b.Address, Deadline());
        Assert.Equal(b.Address, held.Address);
        for (var i = 0; i < 4; i++)
        {
            using var generation = await pool.GenerateAsync(Request(), null, Deadline());
            Assert.Equal(3, await CountTokensAsync(generation));
            Assert.Equal(a.Address, generation.Address);
        }
        Assert.Equal(4, a.Calls);
    }

    [Theory]
    [InlineData(DecoderBehavior.RefuseExhausted)]
    [InlineData(DecoderBehavior.RefuseUnavailable)]
    public async Task A_refusal_before_the_first_message_moves_the_request_to_another_decoder(DecoderBehavior refusal)
    {
        await using var refusing = await FakeWorker.StartAsync(refusal);
        await using var healthy = await FakeWorker.StartAsync(DecoderBehavior.StreamThree);
        using var pool = DecoderPoolFor(refusing, healthy);
        await WaitReadyAsync(pool, 2);

        // Affinity points at the refusing decoder, so the first attempt surely goes there.
        using var generation = await pool.GenerateAsync(Request(), refusing.Address, Deadline());

        Assert.Equal(3, await CountTokensAsync(generation));
        Assert.Equal(healthy.Address, generation.Address);
        Assert.Equal(2, generation.Attempts);
        Assert.Equal(1, refusing.Calls);
        Assert.Equal(1, healthy.Calls);
    }

    [Fact]
    public async Task When_every_decoder_refuses_the_caller_gets_the_refusal_after_bounded_attempts()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.RefuseExhausted);
        await using var b = await FakeWorker.StartAsync(DecoderBehavior.RefuseExhausted);
        using var pool = DecoderPoolWith(3, 2, a, b);
        await WaitReadyAsync(pool, 2);

        var ex = await Assert.ThrowsAsync<RpcException>(() => pool.GenerateAsync(Request(), null, Deadline()));

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal(3, a.Calls + b.Calls);
        Assert.True(a.Calls >= 1 && b.Calls >= 1, "the retry goes to the other decoder");
    }

    [Fact]
    public async Task A_failure_after_the_first_message_is_not_retried()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.FailAfterFirst);
        await using var b = await FakeWorker.StartAsync(DecoderBehavior.FailAfterFirst);
        using var pool = DecoderPoolFor(a, b);
        await WaitReadyAsync(pool, 2);

        using var generation = await pool.GenerateAsync(Request(), null, Deadline());
        var received = 0;
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in generation.ReadAllAsync())
            {
                received++;
            }
        });

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(1, received);
        Assert.Equal(1, a.Calls + b.Calls);
    }

    [Fact]
    public async Task Affinity_is_honoured_while_the_preferred_decoder_is_not_much_busier()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        await using var b = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        using var pool = DecoderPoolWith(3, 2, a, b);
        await WaitReadyAsync(pool, 2);

        // b takes the session's turns while it has at most min + 2 streams: 0, 1, 2 in flight → three go to b.
        var onB = new List<DecoderGeneration>();
        for (var i = 0; i < 3; i++)
        {
            onB.Add(await pool.GenerateAsync(Request(), b.Address, Deadline()));
        }
        Assert.All(onB, s => Assert.Equal(b.Address, s.Address));

        // Now b has 3 and a has 0: 3 > 0 + 2, so the preferred decoder is passed over.
        using var overflow = await pool.GenerateAsync(Request(), b.Address, Deadline());
        Assert.Equal(a.Address, overflow.Address);
        Assert.Equal(3, b.Active);
        Assert.Equal(1, a.Active);
        onB.ForEach(s => s.Dispose());
    }

    [Fact]
    public async Task Disposing_a_generation_cancels_it_on_the_decoder()
    {
        await using var a = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        using var pool = DecoderPoolFor(a);
        await WaitReadyAsync(pool, 1);

        var generation = await pool.GenerateAsync(Request(), null, Deadline());
        Assert.Equal(1, a.Active);
        generation.Dispose();

        await Poll.UntilAsync(() => a.Cancelled == 1 && a.Active == 0, Timeout, "the decoder to see the cancellation");
    }

    [Fact]
    public async Task A_dns_target_resolves_and_serves()
    {
        await using var worker = await FakeWorker.StartAsync(DecoderBehavior.StreamThree, localhost: true);
        using var pool = new DecoderPool(Options.Create(new GatewayOptions { DecoderWorkers = $"dns:///localhost:{worker.Port}" }), NullLoggerFactory.Instance);

        using var generation = await pool.GenerateAsync(Request(), null, Deadline());

        Assert.Equal(3, await CountTokensAsync(generation));
        Assert.True(pool.State.Known >= 1, "localhost resolves to at least one address");
        Assert.Null(pool.Target!.StaticAddresses);
    }

    [Fact]
    public async Task A_static_list_is_counted_as_known_workers()
    {
        await using var a = await FakeWorker.StartAsync();
        await using var b = await FakeWorker.StartAsync();
        using var pool = DecoderPoolFor(a, b);

        await WaitReadyAsync(pool, 2);

        Assert.Equal(2, pool.State.Known);
    }

    [Fact]
    public async Task Vision_calls_are_retried_by_the_channel_on_unavailable_and_spread_round_robin()
    {
        await using var a = await FakeWorker.StartAsync();
        await using var b = await FakeWorker.StartAsync();
        using var pool = new VisionPool(Options.Create(new GatewayOptions { VisionWorkers = $"{a.Url}, {b.Url}" }), NullLoggerFactory.Instance);
        await WaitReadyAsync(pool, 2);

        a.EncodeFailuresLeft = 1;
        b.EncodeFailuresLeft = 1;
        var reply = await pool.EncodeAsync(new EncodeRequest { Sha256 = "abc" }, Deadline());
        Assert.Equal(640u, reply.ImageWidth);

        var before = a.Calls + b.Calls;
        for (var i = 0; i < 10; i++)
        {
            await pool.EncodeAsync(new EncodeRequest { Sha256 = "abc" }, Deadline());
        }
        Assert.Equal(before + 10, a.Calls + b.Calls);
        Assert.True(a.Calls >= 5 && b.Calls >= 5, $"round robin spreads calls ({a.Calls} / {b.Calls})");
    }

    [Fact]
    public async Task An_unconfigured_pool_answers_unavailable_naming_the_setting()
    {
        using var pool = new DecoderPool(Options.Create(new GatewayOptions()), NullLoggerFactory.Instance);

        var ex = await Assert.ThrowsAsync<RpcException>(() => pool.GenerateAsync(Request(), null, Deadline()));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains("Gateway:DecoderWorkers", ex.Status.Detail);
    }

    [Theory]
    [InlineData("http://a:1,http://b:2", 2)]
    [InlineData(" http://10.0.0.1:50051 ", 1)]
    public void Static_lists_parse(string value, int count) =>
        Assert.Equal(count, WorkerTarget.Parse(value, "decoder", "Gateway:DecoderWorkers")!.StaticAddresses!.Count);

    [Theory]
    [InlineData("a:1")]
    [InlineData("http://a:1,https://b:2")]
    [InlineData("dns:///")]
    public void Malformed_targets_are_rejected_naming_the_setting(string value)
    {
        var ex = Assert.Throws<FormatException>(() => WorkerTarget.Parse(value, "decoder", "Gateway:DecoderWorkers"));
        Assert.Contains("Gateway:DecoderWorkers", ex.Message);
    }

    private static DecoderPool DecoderPoolFor(params FakeWorker[] workers) => DecoderPoolWith(3, 2, workers);

    private static DecoderPool DecoderPoolWith(int maxAttempts, int affinitySlack, params FakeWorker[] workers) =>
        new(Options.Create(new GatewayOptions
        {
            DecoderWorkers = string.Join(",", workers.Select(w => w.Url)),
            DecoderMaxAttempts = maxAttempts,
            DecoderRetryBackoffMs = 10,
            DecoderAffinitySlack = affinitySlack,
        }), NullLoggerFactory.Instance);

    private static Task WaitReadyAsync(DecoderPool pool, int ready) => WaitReadyAsync(pool.Channel!, pool.State, ready);

    private static Task WaitReadyAsync(VisionPool pool, int ready) => WaitReadyAsync(pool.Channel!, pool.State, ready);

    private static async Task WaitReadyAsync(Grpc.Net.Client.GrpcChannel channel, WorkerPoolState state, int ready)
    {
        await channel.ConnectAsync(new CancellationTokenSource(Timeout).Token);
        await Poll.UntilAsync(() => state.Ready == ready, Timeout, $"{ready} workers to be ready (ready: {state.Ready}, known: {state.Known})");
    }

    private static async Task<int> CountTokensAsync(DecoderGeneration generation)
    {
        var tokens = 0;
        await foreach (var message in generation.ReadAllAsync())
        {
            tokens += message.TokenIds.Count;
        }
        return tokens;
    }

    private static DecodeRequest Request() => new() { RequestId = "test", InputIds = { 0, 1, 2 }, Stopping = new DecodeStopping { MaxNewTokens = 3 } };

    private static CallOptions Deadline() => new(deadline: DateTime.UtcNow.Add(Timeout));
}
