using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Generation;
using Kosmos2.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Kosmos2.Gateway.Tests;

/// <summary><c>kosmos2.gateway.requests</c> counts each call under the status its client got, failures included.</summary>
public sealed class RequestOutcomeMetricTests
{
    [Fact]
    public async Task Each_call_is_counted_under_the_status_the_client_got()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
            ["Auth:ApiKeys:0:Key"] = "key-of-acme-0123456789",
            ["Auth:ApiKeys:0:Tenant"] = "acme",
        });
        var counted = new ConcurrentQueue<(string Method, string Status)>();
        var meters = gateway.Services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == "kosmos2.gateway.requests")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            var all = tags.ToArray();
            counted.Enqueue((Tag(all, "method"), Tag(all, "status")));
        });
        listener.Start();
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var key = new Metadata { { "authorization", "Bearer key-of-acme-0123456789" } };
        var image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 8)) };

        await client.GetInfoAsync(new GetInfoRequest(), key);
        await Drain(client.Generate(new GenerateRequest { Image = image, Task = TaskKind.BriefCaption }, key));
        var invalid = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(new GenerateRequest { Image = image }, key))); // no prompt, no task
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => Drain(client.Generate(new GenerateRequest { Image = image, Task = TaskKind.BriefCaption })));

        Assert.Equal((StatusCode.InvalidArgument, StatusCode.Unauthenticated), (invalid.StatusCode, anonymous.StatusCode));
        Assert.Equal(
            new[] { ("GetInfo", "OK"), ("Generate", "OK"), ("Generate", "INVALID_ARGUMENT"), ("Generate", "UNAUTHENTICATED") },
            counted.ToArray());
    }

    [Theory]
    [InlineData(StatusCode.OK, "OK")]
    [InlineData(StatusCode.InvalidArgument, "INVALID_ARGUMENT")]
    [InlineData(StatusCode.ResourceExhausted, "RESOURCE_EXHAUSTED")]
    [InlineData(StatusCode.DeadlineExceeded, "DEADLINE_EXCEEDED")]
    [InlineData(StatusCode.Unavailable, "UNAVAILABLE")]
    public void Statuses_are_named_as_grpc_spells_them(StatusCode status, string name) =>
        Assert.Equal(name, RequestOutcomeInterceptor.StatusName(status));

    private static string Tag(KeyValuePair<string, object?>[] tags, string key) => tags.Single(t => t.Key == key).Value as string ?? "";

    private static async Task Drain(AsyncServerStreamingCall<GenerateResponse> call)
    {
        using (call)
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
        }
    }
}
