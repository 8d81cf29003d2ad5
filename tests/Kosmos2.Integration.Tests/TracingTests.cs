using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>One request → one trace with spans from all three services, exported over OTLP to a receiver in this test.</summary>
public sealed class TracingTests
{
    [Fact]
    public async Task One_request_yields_spans_from_all_three_services_in_one_trace()
    {
        var port = FreePort.Next();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        var bodies = new ConcurrentBag<byte[]>();
        using var stop = new CancellationTokenSource();
        var receiving = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try
                {
                    context = await receiver.GetContextAsync().WaitAsync(stop.Token);
                }
                catch (Exception) when (stop.IsCancellationRequested || !receiver.IsListening)
                {
                    return;
                }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                if (context.Request.Url!.AbsolutePath == "/v1/traces")
                {
                    bodies.Add(body.ToArray());
                }
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        });

        var otlp = new Dictionary<string, string>(ClusterFixture.ApiKeys)
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        };
        await using (var cluster = await LocalCluster.StartAsync(otlp))
        {
            var traceId = ActivityTraceId.CreateRandom();
            var headers = new Metadata
            {
                { "authorization", "Bearer " + ClusterFixture.KeyA },
                { "traceparent", $"00-{traceId.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01" },
            };
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
            using var call = client.Generate(new GenerateRequest
            {
                Image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(32, 32, seed: 41)) },
                Task = TaskKind.BriefCaption,
                Stopping = new StoppingParameters { MaxNewTokens = 3 },
            }, headers);
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }

            var traceBytes = Convert.FromHexString(traceId.ToHexString());
            var services = new[] { "kosmos2-gateway", "kosmos2-vision-worker", "kosmos2-decoder-worker" };
            await Poll.UntilAsync(() => services.All(s => bodies.Any(b => Contains(b, System.Text.Encoding.UTF8.GetBytes(s)) && Contains(b, traceBytes))),
                TimeSpan.FromSeconds(30), "spans of the trace from all three services");
        }
        await stop.CancelAsync();
        receiver.Stop();
        await receiving;
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
