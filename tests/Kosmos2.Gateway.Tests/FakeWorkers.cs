using System.Net;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kosmos2.Gateway.Tests;

/// <summary>What a fake decoder does with a Generate call.</summary>
public enum DecoderBehavior
{
    /// <summary>Three messages, the last one final.</summary>
    StreamThree,
    /// <summary>One message, then waits until released (or cancelled), then a final message.</summary>
    HoldAfterFirst,
    /// <summary>RESOURCE_EXHAUSTED before any message.</summary>
    RefuseExhausted,
    /// <summary>UNAVAILABLE before any message.</summary>
    RefuseUnavailable,
    /// <summary>One message, then UNAVAILABLE.</summary>
    FailAfterFirst,
    /// <summary>The ids of <see cref="FakeWorker.Script"/>, one per message, the last one final (eos).</summary>
    Script,
}

/// <summary>
/// A real gRPC server on Kestrel (HTTP/2, loopback) hosting the real DecoderWorker and VisionWorker contracts with
/// scripted behaviour, counting what it receives.
/// </summary>
public sealed class FakeWorker : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;
    private int _active;
    private int _cancelled;
    private int _encodeFailuresLeft;
    private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private FakeWorker(WebApplication app, int port, string host)
    {
        _app = app;
        Port = port;
        Address = $"{host}:{port}";
    }

    public int Port { get; }

    /// <summary><c>host:port</c>, as the gateway's pickers name it.</summary>
    public string Address { get; }

    public string Url => $"http://{Address}";

    public DecoderBehavior Behavior { get; set; } = DecoderBehavior.StreamThree;

    /// <summary>What the fake decoder's GetInfo reports as its <c>max_sequence_tokens</c>.</summary>
    public uint MaxSequenceTokens { get; set; } = 4096;

    /// <summary>Slots and queue places GetInfo reports (0: unknown, so the gateway reserves nothing).</summary>
    public uint MaxRunning { get; set; }

    /// <summary>See <see cref="MaxRunning"/>.</summary>
    public uint MaxWaiting { get; set; }

    /// <summary>The last Generate request the fake decoder received.</summary>
    public DecodeRequest? LastDecodeRequest { get; private set; }

    /// <summary>Token ids a <see cref="DecoderBehavior.Script"/> decoder streams.</summary>
    public IReadOnlyList<uint> Script { get; set; } = [];

    /// <summary>
    /// A <see cref="DecoderBehavior.Script"/> decoder holds back the final message of a prompt holding this id until
    /// <see cref="ReleaseAll"/> (the other prompts of the same call run to their end).
    /// </summary>
    public uint? HoldPromptsWith { get; set; }

    /// <summary>The sampling of the last Generate call.</summary>
    public DecodeSampling? LastSampling { get; private set; }

    /// <summary>The log-probability a <see cref="DecoderBehavior.Script"/> decoder gives its i-th token when asked (exact in binary).</summary>
    public static float ScriptLogprob(int i) => -(i + 1) / 8f;

    public int Calls => Volatile.Read(ref _calls);

    public int Active => Volatile.Read(ref _active);

    public int Cancelled => Volatile.Read(ref _cancelled);

    /// <summary>How long each Encode takes (a busy vision worker).</summary>
    public TimeSpan EncodeDelay { get; set; }

    /// <summary>How many of the next Encode calls fail with UNAVAILABLE.</summary>
    public int EncodeFailuresLeft { set => Volatile.Write(ref _encodeFailuresLeft, value); }

    /// <summary>Lets every held stream finish.</summary>
    public void ReleaseAll() => Interlocked.Exchange(ref _release, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Starts on 127.0.0.1, or on localhost (IPv4 and IPv6) when <paramref name="localhost"/>.</summary>
    public static async Task<FakeWorker> StartAsync(DecoderBehavior behavior = DecoderBehavior.StreamThree, bool localhost = false)
    {
        var port = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (localhost)
            {
                kestrel.ListenLocalhost(port, l => l.Protocols = HttpProtocols.Http2);
            }
            else
            {
                kestrel.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2);
            }
        });
        builder.Services.AddGrpc();
        FakeWorker? self = null;
        builder.Services.AddSingleton(_ => self!);
        var app = builder.Build();
        app.MapGrpcService<DecoderService>();
        app.MapGrpcService<VisionService>();
        self = new FakeWorker(app, port, localhost ? "localhost" : "127.0.0.1") { Behavior = behavior };
        await app.StartAsync();
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseAll();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class DecoderService(FakeWorker worker) : DecoderWorker.DecoderWorkerBase
    {
        public override async Task Generate(DecodeRequest request, IServerStreamWriter<DecodeResponse> responseStream, ServerCallContext context)
        {
            Interlocked.Increment(ref worker._calls);
            Interlocked.Increment(ref worker._active);
            worker.LastDecodeRequest = request;
            worker.LastSampling = request.Sampling;
            try
            {
                switch (worker.Behavior)
                {
                    case DecoderBehavior.RefuseExhausted:
                        throw Kosmos2.ServiceDefaults.RpcErrors.ResourceExhaustedException($"{worker.Address}: no free KV slot", TimeSpan.FromSeconds(3));
                    case DecoderBehavior.RefuseUnavailable:
                        throw new RpcException(new Status(StatusCode.Unavailable, $"{worker.Address}: draining"));
                    case DecoderBehavior.FailAfterFirst:
                        await responseStream.WriteAsync(Tokens(1));
                        throw new RpcException(new Status(StatusCode.Unavailable, $"{worker.Address}: died mid-stream"));
                    case DecoderBehavior.HoldAfterFirst:
                        await responseStream.WriteAsync(Tokens(1));
                        var release = Volatile.Read(ref worker._release).Task;
                        try
                        {
                            await release.WaitAsync(context.CancellationToken);
                        }
                        catch (OperationCanceledException)
                        {
                            Interlocked.Increment(ref worker._cancelled);
                            throw;
                        }
                        await responseStream.WriteAsync(Final(2));
                        break;
                    case DecoderBehavior.Script:
                        for (var i = 0; i < worker.Script.Count - 1; i++)
                        {
                            await responseStream.WriteAsync(WithLogprob(Tokens(worker.Script[i]), request, i));
                        }
                        if (worker.HoldPromptsWith is { } held && request.InputIds.Contains(held))
                        {
                            await Volatile.Read(ref worker._release).Task.WaitAsync(context.CancellationToken);
                        }
                        await responseStream.WriteAsync(WithLogprob(Final(worker.Script[^1]), request, worker.Script.Count - 1));
                        break;
                    default:
                        await responseStream.WriteAsync(Tokens(1));
                        await responseStream.WriteAsync(Tokens(2));
                        await responseStream.WriteAsync(Final(3));
                        break;
                }
            }
            finally
            {
                Interlocked.Decrement(ref worker._active);
            }
        }

        public override Task<DecoderInfo> GetInfo(DecoderInfoRequest request, ServerCallContext context) =>
            Task.FromResult(new DecoderInfo { MaxSequenceTokens = worker.MaxSequenceTokens, MaxRunning = worker.MaxRunning, MaxWaiting = worker.MaxWaiting, Ready = true });

        private static DecodeResponse Tokens(uint id) => new() { TokenIds = { id } };

        private static DecodeResponse WithLogprob(DecodeResponse message, DecodeRequest request, int index)
        {
            if (request.Sampling?.ReturnLogprobs == true)
            {
                message.Logprobs.Add(new DecodeLogprob { Logprob = ScriptLogprob(index), TopTokenIds = { message.TokenIds[0] }, TopLogprobs = { ScriptLogprob(index) } });
            }
            return message;
        }

        private static DecodeResponse Final(uint id) => new()
        {
            TokenIds = { id },
            Final = new DecodeFinal { FinishReason = DecodeFinishReason.Eos, Usage = new DecodeUsage { PromptTokens = 70, GeneratedTokens = id } },
        };
    }

    private sealed class VisionService(FakeWorker worker) : VisionWorker.VisionWorkerBase
    {
        public override async Task<EncodeResponse> Encode(EncodeRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref worker._calls);
            if (Interlocked.Decrement(ref worker._encodeFailuresLeft) >= 0)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "warming up"));
            }
            if (worker.EncodeDelay > TimeSpan.Zero)
            {
                await Task.Delay(worker.EncodeDelay, context.CancellationToken);
            }
            return new EncodeResponse { Sha256 = request.Sha256, CacheKey = worker.Address, ImageWidth = 640, ImageHeight = 480 };
        }
    }
}
