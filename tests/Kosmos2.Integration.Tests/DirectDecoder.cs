using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// A decoder worker on the golden checkpoint driven straight through its internal API, for the tests that hold its
/// slots with long streams while something happens to it (a drain, a crash): streams that ignore &lt;/s&gt; and so run
/// to a length sized to this machine's speed now, and polls of its running and waiting counts.
/// </summary>
internal static class DirectDecoder
{
    internal sealed record Outcome(StatusCode Status, int Tokens, TimeSpan EndedAt);

    private static readonly uint[] Prompt = [0, 4, 5, 6, 7, 8];

    /// <summary>
    /// New tokens for the running streams: about <paramref name="seconds"/> of decoding at the speed this machine
    /// shows now (steps take milliseconds on an idle machine and far longer on a loaded one), at least 16, at most what
    /// the decoder's context holds. The time per token is the difference of a 16- and a 48-token generation over 32, so
    /// the call's fixed cost (connection, prefill) is not spread over the tokens: with it, a 16-token probe made the
    /// tokens look several times slower, and the "3 s" streams of the drain test ended 124 ms after SIGTERM on CI.
    /// </summary>
    internal static async Task<int> RunningLengthAsync(DecoderWorker.DecoderWorkerClient client, double seconds)
    {
        const int shortProbe = 16;
        const int longProbe = 48;
        var shortTime = await TimedAsync(shortProbe);
        var longTime = await TimedAsync(longProbe);
        var perToken = longTime > shortTime ? (longTime - shortTime) / (longProbe - shortProbe) : longTime / longProbe;
        return (int)Math.Clamp(seconds / perToken, shortProbe, MaxSequenceTokens() - Prompt.Length);

        async Task<double> TimedAsync(int tokens)
        {
            var watch = Stopwatch.StartNew();
            var outcome = await RunAsync(client, tokens, watch);
            Assert.Equal((StatusCode.OK, tokens), (outcome.Status, outcome.Tokens));
            return outcome.EndedAt.TotalSeconds;
        }
    }

    /// <summary>The checkpoint's position limit: the longest a generation may run on it.</summary>
    internal static int MaxSequenceTokens()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.GoldenModelDir, "config.json")))!;
        return (config["text_config"] ?? config)["max_position_embeddings"]!.GetValue<int>();
    }

    /// <summary>A decoder with <paramref name="slots"/> KV slots and a long queue, SERVING.</summary>
    internal static async Task<ServiceProcess> StartAsync(int slots, int? port = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Decoder__DType"] = "float32",
            ["Decoder__Device"] = "cpu",
            ["Decoder__MaxRunning"] = slots.ToString(CultureInfo.InvariantCulture),
            ["Decoder__MaxWaiting"] = "64",
            ["Decoder__MaxSequenceTokens"] = MaxSequenceTokens().ToString(CultureInfo.InvariantCulture),
            ["Service__ShutdownTimeoutSeconds"] = "120",
        };
        var decoder = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), environment, port);
        try
        {
            await decoder.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        }
        catch
        {
            await decoder.DisposeAsync();
            throw;
        }
        return decoder;
    }

    /// <summary>Waits until the decoder runs <paramref name="running"/> requests and queues <paramref name="waiting"/>.</summary>
    internal static Task WaitForLoadAsync(DecoderWorker.DecoderWorkerClient client, int running, int waiting) =>
        Poll.UntilAsync(async () =>
        {
            var info = await client.GetInfoAsync(new DecoderInfoRequest());
            return info.Running == running && info.Waiting == waiting;
        }, TimeSpan.FromSeconds(60), $"the decoder to run {running} and queue {waiting} requests", intervalMs: 5);

    /// <summary>One greedy generation straight to the decoder, ignoring &lt;/s&gt; so it runs to its length (or until cancelled).</summary>
    internal static async Task<Outcome> RunAsync(DecoderWorker.DecoderWorkerClient client, int maxNewTokens, Stopwatch clock,
        CancellationToken cancellationToken = default)
    {
        var request = new DecodeRequest { Stopping = new DecodeStopping { MaxNewTokens = (uint)maxNewTokens, IgnoreEos = true } };
        request.InputIds.Add(Prompt);
        var tokens = 0;
        try
        {
            using var call = client.Generate(request, deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: cancellationToken);
            await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                tokens += message.TokenIds.Count;
            }
            return new Outcome(StatusCode.OK, tokens, clock.Elapsed);
        }
        catch (RpcException ex)
        {
            return new Outcome(ex.StatusCode, tokens, clock.Elapsed);
        }
        catch (OperationCanceledException)
        {
            return new Outcome(StatusCode.Cancelled, tokens, clock.Elapsed);
        }
    }

    /// <summary>A short brief caption through the gateway (tenant A); its result.</summary>
    internal static async Task<GenerateResult> CaptionAsync(Contracts.V1.Kosmos2.Kosmos2Client api, Contracts.V1.Image image)
    {
        var request = new GenerateRequest { Image = image, Task = TaskKind.BriefCaption, Stopping = new StoppingParameters { MaxNewTokens = 4 } };
        using var call = api.Generate(request, ClusterFixture.TenantA, deadline: DateTime.UtcNow.AddMinutes(2));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        return result ?? throw new InvalidOperationException("Generate ended without a result.");
    }
}
