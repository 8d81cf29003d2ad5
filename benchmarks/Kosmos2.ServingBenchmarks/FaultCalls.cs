using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Launch;

namespace Kosmos2.ServingBenchmarks;

/// <summary>The calls and measurements the <see cref="FaultsBench"/> scenarios make.</summary>
internal static class FaultCalls
{
    internal static Image Image(int seed) => new() { Data = ByteString.CopyFrom(RandomImages.Png(64, 48, seed)) };

    internal static GenerateRequest LongRequest(int seed, int tokens = 400) => new()
    {
        Image = Image(seed),
        Prompt = "<grounding>An image of",
        Stopping = new StoppingParameters { MaxNewTokens = (uint)tokens },
    };

    internal static async Task<StatusCode> CaptionAsync(Contracts.V1.Kosmos2.Kosmos2Client client, int seed, TaskKind task = TaskKind.BriefCaption, int maxNewTokens = 4)
    {
        try
        {
            using var call = client.Generate(new GenerateRequest { Image = Image(seed), Task = task, Text = "what?", Stopping = new StoppingParameters { MaxNewTokens = (uint)maxNewTokens } },
                deadline: DateTime.UtcNow.AddSeconds(60));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    /// <summary>A streamed call's status, client-side time to its first message, retry hint and (when OK) the gateway's timings.</summary>
    internal static async Task<(StatusCode Status, double TtftMs, string? RetryAfter, Timings? Timings)> TimedAsync(Contracts.V1.Kosmos2.Kosmos2Client client, GenerateRequest request)
    {
        var watch = Stopwatch.StartNew();
        double ttft = double.NaN;
        Timings? timings = null;
        try
        {
            using var call = client.Generate(request, deadline: DateTime.UtcNow.AddMinutes(3));
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                if (double.IsNaN(ttft))
                {
                    ttft = watch.Elapsed.TotalMilliseconds;
                }
                timings = message.Result?.Timings ?? timings;
            }
            return (StatusCode.OK, ttft, null, timings);
        }
        catch (RpcException ex)
        {
            return (ex.StatusCode, ttft, ex.Trailers.GetValue("retry-after"), null);
        }
    }

    internal static async Task TurnAsync(Contracts.V1.Kosmos2.Kosmos2Client client, string sessionId)
    {
        var status = await TurnStatusAsync(client, sessionId);
        if (status != StatusCode.OK)
        {
            throw new InvalidOperationException($"a chat turn failed with {status}");
        }
    }

    internal static async Task<StatusCode> TurnStatusAsync(Contracts.V1.Kosmos2.Kosmos2Client client, string sessionId)
    {
        try
        {
            using var call = client.SendTurn(new SendTurnRequest { SessionId = sessionId, Text = "What is this?" }, deadline: DateTime.UtcNow.AddSeconds(60));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    /// <summary>
    /// Requests the gateway moved off the decoder on <paramref name="decoderPort"/> because it failed them with
    /// UNAVAILABLE before their first message: its warnings in the gateway's recent output.
    /// </summary>
    internal static int MovedOffDecoder(ServiceProcess gateway, int decoderPort) =>
        gateway.Tail(400).Split('\n').Count(l => l.Contains($":{decoderPort}", StringComparison.Ordinal)
                                                  && l.Contains("refused a generation with Unavailable", StringComparison.Ordinal));

    /// <summary>RSS (MB), threads and open descriptors of each service, from /proc.</summary>
    internal static Dictionary<string, (double Rss, int Threads, int Fds)> Sample(ServiceProcess[] services) =>
        services.ToDictionary(s => s.Name, s =>
        {
            var status = File.ReadAllLines($"/proc/{s.ProcessId}/status");
            double Field(string name) => double.Parse(status.First(l => l.StartsWith(name, StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            return (Field("VmRSS") / 1024, (int)Field("Threads"), Directory.GetFiles($"/proc/{s.ProcessId}/fd").Length);
        });
}
