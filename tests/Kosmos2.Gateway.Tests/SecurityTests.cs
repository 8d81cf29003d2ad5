using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// What the gateway bounds for a hostile or greedy caller, on the real host: calls are admitted on their headers before
/// the body is read, every input has a size, a tenant's quota holds while other tenants are served, and no call lasts
/// forever.
/// </summary>
public sealed class SecurityTests
{
    private const string AcmeKey = "key-of-acme-0123456789";
    private const string GlobexKey = "key-of-globex-987654321";

    private static Dictionary<string, string?> Settings(FakeWorker? workers, params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Auth:ApiKeys:0:Key"] = AcmeKey,
            ["Auth:ApiKeys:0:Tenant"] = "acme",
            ["Auth:ApiKeys:1:Key"] = GlobexKey,
            ["Auth:ApiKeys:1:Tenant"] = "globex",
        };
        if (workers is not null)
        {
            settings["Gateway:VisionWorkers"] = workers.Url;
            settings["Gateway:DecoderWorkers"] = workers.Url;
        }
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }
        return settings;
    }

    private static Metadata Bearer(string key) => new() { { "authorization", "Bearer " + key } };

    private static Image SmallImage(int seed) => new() { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed)) };

    [Fact]
    public async Task An_unauthenticated_call_is_refused_on_its_headers_while_its_body_is_still_being_sent()
    {
        await using var gateway = await GatewayHost.StartAsync(Settings(null));
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = Timeout.InfiniteTimeSpan };
        var body = new EndlessGrpcBody(declaredBytes: 20 * 1024 * 1024);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{gateway.Url}/kosmos2.v1.Kosmos2/Generate")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = body,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");

        // The body declares a 20 MB message and never finishes: an answer can only come from the headers alone.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);

        Assert.Equal(((int)StatusCode.Unauthenticated).ToString(), response.Headers.GetValues("grpc-status").Single());
        Assert.Contains("API%20key", response.Headers.GetValues("grpc-message").Single(), StringComparison.Ordinal);
        Assert.True(body.BytesSent < 20 * 1024 * 1024, $"the whole body was sent ({body.BytesSent:N0} bytes)");
        body.Stop();
    }

    [Fact]
    public async Task A_20MB_phrase_is_invalid_before_the_image_is_encoded_and_the_message_quotes_none_of_it()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(Settings(workers));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var options = new GatewayOptions();
        var phrase = new string('a', 20 * 1024 * 1024);

        var ex = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(
            new GenerateRequest { Image = SmallImage(1), Task = TaskKind.PhraseGrounding, Phrases = { "a dog", phrase } }, Bearer(AcmeKey))));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("phrases[1]", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(nameof(GatewayOptions.MaxPhraseChars), ex.Status.Detail, StringComparison.Ordinal);
        Assert.True(ex.Status.Detail.Length < 200, ex.Status.Detail);
        Assert.Equal(0, workers.Calls); // refused before the image went to a vision worker
        Assert.True(options.MaxPhraseChars < phrase.Length);
    }

    [Fact]
    public async Task A_region_with_too_many_boxes_and_a_long_phrase_with_a_tag_are_invalid_with_short_messages()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(Settings(workers));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var options = new GatewayOptions();
        var region = new Region { Phrase = "it" };
        region.Boxes.Add(Enumerable.Range(0, options.MaxBoxesPerRegion + 1).Select(_ => new Box { X1 = 0.1, Y1 = 0.1, X2 = 0.5, Y2 = 0.5 }));

        var tooManyBoxes = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(
            new GenerateRequest { Image = SmallImage(2), Prompt = "<grounding><phrase>it</phrase>", Regions = { region } }, Bearer(AcmeKey))));
        var taggedPhrase = "<" + new string('x', options.MaxPhraseChars - 1);
        var tagged = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(
            new GenerateRequest { Image = SmallImage(3), Task = TaskKind.PhraseGrounding, Phrases = { taggedPhrase } }, Bearer(AcmeKey))));

        Assert.Equal(StatusCode.InvalidArgument, tooManyBoxes.StatusCode);
        Assert.Contains(nameof(GatewayOptions.MaxBoxesPerRegion), tooManyBoxes.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, tagged.StatusCode);
        Assert.DoesNotContain(taggedPhrase, tagged.Status.Detail, StringComparison.Ordinal);
        Assert.Contains($"{taggedPhrase.Length} characters", tagged.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tenant_over_its_in_flight_quota_is_refused_with_a_retry_hint_while_another_tenant_is_served()
    {
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        await using var gateway = await GatewayHost.StartAsync(Settings(workers, ("Auth:ApiKeys:0:Quota:MaxInFlight", "1")));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var held = client.Generate(new GenerateRequest { Image = SmallImage(4), Task = TaskKind.BriefCaption }, Bearer(AcmeKey), cancellationToken: timeout.Token);
        Assert.True(await held.ResponseStream.MoveNext(timeout.Token));
        var refused = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(
            new GenerateRequest { Image = SmallImage(5), Task = TaskKind.BriefCaption }, Bearer(AcmeKey))));
        using var other = client.Generate(new GenerateRequest { Image = SmallImage(6), Task = TaskKind.BriefCaption }, Bearer(GlobexKey), cancellationToken: timeout.Token);
        Assert.True(await other.ResponseStream.MoveNext(timeout.Token));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("in flight", refused.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(refused.Trailers.GetValue("retry-after"));
        workers.ReleaseAll();
        await DrainStream(held, timeout.Token);
        await DrainStream(other, timeout.Token);

        // The stream's lease went with it: the tenant is admitted again.
        workers.Behavior = DecoderBehavior.StreamThree;
        await Drain(client.Generate(new GenerateRequest { Image = SmallImage(7), Task = TaskKind.BriefCaption }, Bearer(AcmeKey)));
    }

    [Fact]
    public async Task Phrase_grounding_counts_one_stream_per_phrase_against_the_in_flight_quota()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(Settings(workers, ("Auth:ApiKeys:0:Quota:MaxInFlight", "2")));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var refused = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(
            new GenerateRequest { Image = SmallImage(8), Task = TaskKind.PhraseGrounding, Phrases = { "a", "b", "c" } }, Bearer(AcmeKey))));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal(0, workers.Calls); // refused before any encode or decode
    }

    [Fact]
    public async Task A_tenant_over_its_requests_per_second_is_refused_and_counted_while_another_is_served()
    {
        await using var gateway = await GatewayHost.StartAsync(Settings(null, ("Auth:ApiKeys:0:Quota:RequestsPerSecond", "0.2")));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        using var refusals = new CounterWatch(gateway.Services, "kosmos2.gateway.tenant.refusals");

        await client.GetInfoAsync(new GetInfoRequest(), Bearer(AcmeKey));
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), Bearer(AcmeKey)).ResponseAsync);
        await client.GetInfoAsync(new GetInfoRequest(), Bearer(GlobexKey));
        await client.GetInfoAsync(new GetInfoRequest(), Bearer(GlobexKey));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        // One call every 5 s: the next fits in at most 5 s.
        Assert.InRange(int.Parse(refused.Trailers.GetValue("retry-after")!, System.Globalization.CultureInfo.InvariantCulture), 1, 5);
        Assert.Equal([("acme", "requests_per_second")], refusals.Seen("tenant", "reason"));
    }

    [Fact]
    public async Task A_call_held_open_past_the_longest_call_duration_ends_with_deadline_exceeded_and_frees_its_decoder_slot()
    {
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.HoldAfterFirst);
        await using var gateway = await GatewayHost.StartAsync(Settings(workers, ("Gateway:MaxCallSeconds", "2")));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var watch = Stopwatch.StartNew();

        // No deadline from the client, and it stops reading after the first message.
        using var call = client.Generate(new GenerateRequest { Image = SmallImage(9), Task = TaskKind.BriefCaption }, Bearer(AcmeKey));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var ended = await Assert.ThrowsAsync<RpcException>(() => DrainStream(call, CancellationToken.None));

        Assert.Equal(StatusCode.DeadlineExceeded, ended.StatusCode);
        Assert.InRange(watch.Elapsed.TotalSeconds, 1.5, 15);
        await Poll.UntilAsync(() => Task.FromResult(workers.Cancelled == 1), TimeSpan.FromSeconds(10), "the decoder call to be cancelled");
    }

    [Fact]
    public async Task Headers_beyond_the_limit_are_refused()
    {
        await using var gateway = await GatewayHost.StartAsync(Settings(null, ("Service:MaxRequestHeaderBytes", "4096")));
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var huge = Bearer(AcmeKey);
        huge.Add("x-padding", new string('p', 8192));

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), huge).ResponseAsync);

        Assert.NotEqual(StatusCode.OK, ex.StatusCode);
        await client.GetInfoAsync(new GetInfoRequest(), Bearer(AcmeKey));
    }

    private static async Task Drain(AsyncServerStreamingCall<GenerateResponse> call)
    {
        using (call)
        {
            await DrainStream(call, CancellationToken.None);
        }
    }

    private static async Task DrainStream(AsyncServerStreamingCall<GenerateResponse> call, CancellationToken cancellationToken)
    {
        await foreach (var _ in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
        }
    }

    /// <summary>A gRPC request body: a frame header declaring a large message, then slow bytes that never end.</summary>
    private sealed class EndlessGrpcBody : HttpContent
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly int _declaredBytes;
        private long _sent;

        public EndlessGrpcBody(int declaredBytes)
        {
            _declaredBytes = declaredBytes;
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        }

        public long BytesSent => Interlocked.Read(ref _sent);

        public void Stop() => _stop.Cancel();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var header = new byte[5];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(1), _declaredBytes);
            await stream.WriteAsync(header);
            var chunk = new byte[64 * 1024];
            try
            {
                while (!_stop.IsCancellationRequested && BytesSent < _declaredBytes / 2)
                {
                    await stream.WriteAsync(chunk, _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                    Interlocked.Add(ref _sent, chunk.Length);
                    await Task.Delay(50, _stop.Token);
                }
                await Task.Delay(Timeout.Infinite, _stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
