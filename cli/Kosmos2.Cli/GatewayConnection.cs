using System.Diagnostics;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli;

/// <summary>
/// A connection to a gateway: address from <c>--gateway</c>, <c>$KOSMOS2_GATEWAY</c> or the default of <c>kosmos2 up</c>;
/// API key from <c>--api-key</c> or <c>$KOSMOS2_API_KEY</c>. Streams a generation to the terminal as it arrives.
/// </summary>
internal sealed class GatewayConnection : IDisposable
{
    public const string DefaultAddress = "http://127.0.0.1:50051";
    private readonly GrpcChannel _channel;
    private readonly Metadata _headers = [];

    public GatewayConnection(CommandLine cli)
    {
        var address = cli.Option("gateway") ?? Environment.GetEnvironmentVariable("KOSMOS2_GATEWAY") ?? DefaultAddress;
        if (!address.Contains("://", StringComparison.Ordinal))
        {
            address = "http://" + address;
        }
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 });
        Client = new Contracts.V1.Kosmos2.Kosmos2Client(_channel);
        var key = cli.Option("api-key") ?? Environment.GetEnvironmentVariable("KOSMOS2_API_KEY");
        if (!string.IsNullOrEmpty(key))
        {
            RefuseKeyInClearText(address);
            _headers.Add("authorization", "Bearer " + key);
        }
    }

    public Contracts.V1.Kosmos2.Kosmos2Client Client { get; }

    /// <summary>
    /// An API key sent over plain <c>http://</c> beyond this machine can be read by anyone on the path: refused unless
    /// <c>KOSMOS2_ALLOW_PLAINTEXT_KEY=1</c> says the network is trusted (a private cluster network).
    /// </summary>
    internal static void RefuseKeyInClearText(string address)
    {
        var uri = new Uri(address);
        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback && Environment.GetEnvironmentVariable("KOSMOS2_ALLOW_PLAINTEXT_KEY") != "1")
        {
            throw new UsageException(
                $"Refusing to send the API key in clear text to {uri.Host}: use https:// (a gateway behind TLS), or set " +
                "KOSMOS2_ALLOW_PLAINTEXT_KEY=1 if the network between here and the gateway is trusted.");
        }
    }

    public Metadata Headers => _headers;

    /// <summary>
    /// Runs a streaming call; with <paramref name="echo"/>, prints text deltas as they arrive (a caption restart ends
    /// the line printed so far and starts a new one: only the text after it is the result's).
    /// </summary>
    public static async Task<(GenerateResult Result, double ElapsedMs)> StreamAsync(AsyncServerStreamingCall<GenerateResponse> call, TextWriter? echo)
    {
        var watch = Stopwatch.StartNew();
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            if (message.Delta is { } delta && echo is not null)
            {
                await echo.WriteAsync(delta.Text);
                await echo.FlushAsync();
            }
            if (message.Restart is not null && echo is not null)
            {
                await echo.WriteLineAsync(" [restarted]");
            }
            result ??= message.Result;
        }
        echo?.WriteLine();
        return (result ?? throw new InvalidOperationException("The gateway ended the stream without a result."), watch.Elapsed.TotalMilliseconds);
    }

    /// <summary>The report of a gateway result, in the offline `generate` shape plus cache hit and pixel boxes.</summary>
    public static GenerationReport ToReport(GenerateResult result, double elapsedMs)
    {
        var entities = result.Entities.Select(e => new ReportEntity(
            e.Phrase, (int)e.SpanStart, (int)e.SpanEnd,
            e.Boxes.Select(b => new[] { b.Normalized.X1, b.Normalized.Y1, b.Normalized.X2, b.Normalized.Y2 }).ToList(),
            e.Boxes.Select(b => new[] { b.Pixels.X1, b.Pixels.Y1, b.Pixels.X2, b.Pixels.Y2 }).ToList(),
            result.TokenLogprobs.Count > 0 ? e.Boxes.Select(b => b.HasMeanLogprob ? b.MeanLogprob : (float?)null).ToList() : null)).ToList();
        var timings = new Dictionary<string, object>
        {
            ["total"] = result.Timings.TotalMs,
            ["client_total"] = elapsedMs,
            ["time_to_first_token"] = result.Timings.TimeToFirstTokenMs,
            ["vision"] = result.Timings.VisionMs,
            ["queue"] = result.Timings.QueueMs,
            ["image_cache_hit"] = result.Timings.ImageCacheHit,
        };
        var usage = new Dictionary<string, object>
        {
            ["prompt_tokens"] = result.Usage?.PromptTokens ?? 0u,
            ["generated_tokens"] = result.Usage?.GeneratedTokens ?? 0u,
            ["cached_prompt_tokens"] = result.Usage?.CachedPromptTokens ?? 0u,
        };
        return new GenerationReport(
            result.PromptTokenIds.Select(i => (int)i).ToList(),
            result.TokenIds.Select(i => (int)i).ToList(),
            result.RawText,
            result.Text,
            entities,
            timings,
            result.TokenLogprobs.Count > 0 ? result.TokenLogprobs : null)
        {
            Usage = usage,
        };
    }

    /// <summary>`INVALID_ARGUMENT: …` — the status name as gRPC spells it.</summary>
    public static string Describe(RpcException ex)
    {
        var name = new StringBuilder();
        foreach (var c in ex.StatusCode.ToString())
        {
            if (char.IsUpper(c) && name.Length > 0)
            {
                name.Append('_');
            }
            name.Append(char.ToUpperInvariant(c));
        }
        return $"{name}: {ex.Status.Detail}";
    }

    public void Dispose() => _channel.Dispose();
}
