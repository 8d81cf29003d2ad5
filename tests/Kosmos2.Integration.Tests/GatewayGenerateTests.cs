using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>The public API end to end on the whole cluster (three services, real Redis, golden checkpoint).</summary>
[Collection(nameof(ClusterCollection))]
public sealed class GatewayGenerateTests(ClusterFixture fixture)
{
    private Contracts.V1.Kosmos2.Kosmos2Client Client => fixture.Client;

    [Fact]
    [Trait("Category", "Golden")]
    public async Task Every_golden_case_in_every_box_form_streams_the_reference_text_and_entities()
    {
        var cases = GoldenCase.AllInEveryBoxForm();
        Assert.NotEmpty(cases);
        foreach (var golden in cases)
        {
            var request = golden.Request();

            var (deltas, entities, result) = await GenerateAsync(request);

            Assert.True(golden.NewTokenIds.Select(i => (uint)i).SequenceEqual(result.TokenIds), $"{golden}: other tokens than the reference's");
            Assert.Equal(golden.CleanText, result.Text);
            Assert.Equal(result.Text, string.Concat(deltas));
            Assert.Equal(golden.Entities.Count, result.Entities.Count);
            for (var i = 0; i < golden.Entities.Count; i++)
            {
                var (phrase, start, end, boxes) = golden.Entities[i];
                var actual = result.Entities[i];
                Assert.Equal(phrase, actual.Phrase);
                Assert.Equal((uint)start, actual.SpanStart);
                Assert.Equal((uint)end, actual.SpanEnd);
                Assert.Equal(boxes.Length, actual.Boxes.Count);
                for (var b = 0; b < boxes.Length; b++)
                {
                    Assert.Equal(boxes[b], new[] { actual.Boxes[b].Normalized.X1, actual.Boxes[b].Normalized.Y1, actual.Boxes[b].Normalized.X2, actual.Boxes[b].Normalized.Y2 });
                }
            }
            Assert.Equal(result.Entities, entities);
            Assert.True(result.Timings.TotalMs > 0);
            Assert.Equal((uint)golden.NewTokenIds.Length, result.Usage.GeneratedTokens);
        }
    }

    [Fact]
    public async Task The_second_request_for_an_image_reports_a_cache_hit_and_pixel_boxes_follow_the_image_size()
    {
        var png = TestImages.RandomPng(300, 150, seed: 31);
        var request = new GenerateRequest
        {
            Image = new Image { Data = ByteString.CopyFrom(png) },
            Task = TaskKind.ReferringExpressionGeneration,
            Stopping = new StoppingParameters { MaxNewTokens = 4 },
        };
        request.Regions.Add(new Region { Frame = BoxFrame.Pixels, Boxes = { new Box { X1 = 30, Y1 = 15, X2 = 150, Y2 = 120 } } });

        var first = (await GenerateAsync(request)).Result;
        var second = (await GenerateAsync(request)).Result;

        Assert.False(first.Timings.ImageCacheHit);
        Assert.True(second.Timings.ImageCacheHit);
        var entity = Assert.Single(first.Entities, e => e.Phrase == "It");
        var box = Assert.Single(entity.Boxes);
        Assert.Equal(box.Normalized.X1 * 300, box.Pixels.X1, 6);
        Assert.Equal(box.Normalized.Y2 * 150, box.Pixels.Y2, 6);
        Assert.Equal(first.Text, second.Text);

        var byHash = new GenerateRequest(request) { Image = new Image { Sha256 = first.ImageSha256 } };
        Assert.True((await GenerateAsync(byHash)).Result.Timings.ImageCacheHit);
    }

    [Fact]
    public async Task Every_task_produces_a_result()
    {
        var image = new Image { Data = ByteString.CopyFrom(File.ReadAllBytes(GoldenCase.All()[0].ImagePath)) };
        var requests = new List<GenerateRequest>
        {
            new() { Image = image, Task = TaskKind.BriefCaption },
            new() { Image = image, Task = TaskKind.DetailedCaption },
            new() { Image = image, Task = TaskKind.PhraseGrounding, Phrases = { "a red circle", "the blue square" } },
            new() { Image = image, Task = TaskKind.ReferringExpressionComprehension, Text = "the circle" },
            new() { Image = image, Task = TaskKind.Vqa, Text = "What is in the picture?" },
        };
        foreach (var request in requests)
        {
            request.Stopping = new StoppingParameters { MaxNewTokens = 6 };
            var (deltas, _, result) = await GenerateAsync(request);
            Assert.Equal(result.Text, string.Concat(deltas));
            Assert.NotEqual(FinishReason.Unspecified, result.FinishReason);
        }
    }

    [Fact]
    public async Task Invalid_requests_name_the_field_and_the_limit()
    {
        var image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(20, 20, seed: 32)) };
        var cases = new (GenerateRequest Request, string Mentions)[]
        {
            (new GenerateRequest { Image = image }, "prompt"),
            (new GenerateRequest { Image = new Image(), Prompt = "x" }, "image"),
            (new GenerateRequest { Image = image, Prompt = "x", Stopping = new StoppingParameters { MaxNewTokens = 100_000 } }, "max_new_tokens"),
            (new GenerateRequest { Image = new Image { Data = ByteString.CopyFromUtf8("not an image") }, Prompt = "x" }, "image"),
            (new GenerateRequest { Image = image, Prompt = "<phrase>a</phrase>", Regions = { new Region { Boxes = { new Box { X1 = 0.5, Y1 = 0.5, X2 = 0.2, Y2 = 0.9 } } } } }, "regions"),
            (new GenerateRequest { Image = image, Task = TaskKind.Vqa }, "text"),
        };
        foreach (var (request, mentions) in cases)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(() => GenerateAsync(request));
            Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
            Assert.Contains(mentions, ex.Status.Detail, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Cancelling_at_the_client_frees_the_decoder_slot_and_a_deadline_ends_the_request_at_every_hop()
    {
        var decoder = new DecoderWorker.DecoderWorkerClient(fixture.Cluster.Decoder.Channel);
        // Seeded sampling repeats exactly: find a seed whose generation runs long (no early </s>), measured to the end.
        GenerateRequest? request = null;
        double fullRunMs = 0;
        for (ulong seed = 1; seed <= 20 && request is null; seed++)
        {
            var candidate = new GenerateRequest
            {
                Image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(64, 64, seed: 33)) },
                Prompt = "<grounding>An image of",
                Sampling = new SamplingParameters { Temperature = 1.5f, Seed = seed },
                Stopping = new StoppingParameters { MaxNewTokens = 300 },
            };
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var full = (await GenerateAsync(candidate)).Result;
            if (full.Usage.GeneratedTokens == 300)
            {
                (request, fullRunMs) = (candidate, watch.Elapsed.TotalMilliseconds);
            }
        }
        Assert.NotNull(request);
        // Time it again now that the image is cached, so the deadline below is a fraction of the real generation.
        var timed = System.Diagnostics.Stopwatch.StartNew();
        await GenerateAsync(request);
        fullRunMs = timed.Elapsed.TotalMilliseconds;

        using (var cts = new CancellationTokenSource())
        {
            using var call = Client.Generate(request, Headers, cancellationToken: cts.Token);
            // Wait for generated tokens: from then on the request holds a decoder slot until it ends or is cancelled.
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                Assert.Null(call.ResponseStream.Current.Result);
                if (call.ResponseStream.Current.Delta is { TokenIds.Count: > 0 })
                {
                    break;
                }
            }
            cts.Cancel();
        }
        await Poll.UntilAsync(async () => (await decoder.GetInfoAsync(new DecoderInfoRequest())).KvSlotsInUse == 0, TimeSpan.FromSeconds(5), "the slot to be freed after cancel");

        // A deadline a third of the timed run should end it mid-generation. Test assemblies share the machine, so the
        // timed run may have been slowed by others; if the run beats its deadline, try again with a shorter one.
        RpcException? ex = null;
        foreach (var divisor in new[] { 3, 8, 20, 50 })
        {
            var deadlineMs = Math.Max(50, fullRunMs / divisor);
            try
            {
                using var call = Client.Generate(request, Headers, deadline: DateTime.UtcNow.AddMilliseconds(deadlineMs));
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            catch (RpcException e)
            {
                ex = e;
                break;
            }
        }
        Assert.NotNull(ex);
        Assert.True(ex.StatusCode == StatusCode.DeadlineExceeded, $"expected DEADLINE_EXCEEDED, got {ex.StatusCode}: {ex.Status.Detail}");
        await Poll.UntilAsync(async () => (await decoder.GetInfoAsync(new DecoderInfoRequest())).KvSlotsInUse == 0, TimeSpan.FromSeconds(5), "the slot to be freed after the deadline");
    }

    [Fact]
    public async Task A_missing_or_wrong_api_key_is_unauthenticated()
    {
        var request = new GenerateRequest { Image = new Image { Sha256 = new string('0', 64) }, Prompt = "x" };
        var none = await Assert.ThrowsAsync<RpcException>(() => Client.Generate(request).ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        var wrong = await Assert.ThrowsAsync<RpcException>(() =>
            Client.Generate(request, new Metadata { { "x-api-key", "nope" } }).ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        var info = await Client.GetInfoAsync(new GetInfoRequest(), Headers);
        Assert.Equal(1u, info.DecoderWorkers);
        Assert.Equal(1u, info.VisionWorkers);
    }

    private static Metadata Headers => ClusterFixture.TenantA;

    private async Task<(List<string> Deltas, List<Entity> Entities, GenerateResult Result)> GenerateAsync(GenerateRequest request)
    {
        using var call = Client.Generate(request, Headers);
        var deltas = new List<string>();
        var entities = new List<Entity>();
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            switch (message.EventCase)
            {
                case GenerateResponse.EventOneofCase.Delta:
                    deltas.Add(message.Delta.Text);
                    break;
                case GenerateResponse.EventOneofCase.Entity:
                    entities.Add(message.Entity);
                    break;
                case GenerateResponse.EventOneofCase.Result:
                    result = message.Result;
                    break;
            }
        }
        return (deltas, entities, result ?? throw new InvalidOperationException("No final result."));
    }
}
