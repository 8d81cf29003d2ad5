using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Kosmos2.Contracts.Internal.V1;
using Microsoft.Extensions.Options;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// The decoder workers: one channel balanced by in-flight streams (<see cref="DecoderPicker"/>), and retry in code
/// rather than channel configuration, because the rule depends on the stream: a decoder that refuses a request
/// (UNAVAILABLE, or RESOURCE_EXHAUSTED when its KV slots or queue are full) does so before its first message, and the
/// request may then go to another decoder; once a message has arrived the generation is committed to that decoder and
/// any later failure goes to the caller as it is (a repeat would duplicate streamed text).
/// </summary>
public sealed partial class DecoderPool : IDisposable
{
    private readonly GrpcChannel? _channel;
    private readonly DecoderWorker.DecoderWorkerClient? _client;
    private readonly int _maxAttempts;
    private readonly TimeSpan _backoff;
    private readonly TimeSpan _readyWait;
    private readonly ILogger<DecoderPool> _logger;
    private int? _contextLimit;
    private int? _slotsPerDecoder;
    private long _contextLimitAt;
    private int _reserved;

    public DecoderPool(IOptions<GatewayOptions> options, ILoggerFactory loggerFactory, InternalSecrets? internalSecrets = null)
    {
        var o = options.Value;
        _logger = loggerFactory.CreateLogger<DecoderPool>();
        _maxAttempts = Math.Max(1, o.DecoderMaxAttempts);
        _backoff = TimeSpan.FromMilliseconds(Math.Max(0, o.DecoderRetryBackoffMs));
        _readyWait = TimeSpan.FromMilliseconds(Math.Max(0, o.WorkerReadyWaitMs));
        Target = WorkerTarget.Parse(o.DecoderWorkers, "decoder", $"Gateway:{nameof(GatewayOptions.DecoderWorkers)}");
        if (Target is null)
        {
            return;
        }
        // No MethodConfig/RetryPolicy: a generation is never retried or hedged by the channel.
        var serviceConfig = new ServiceConfig { LoadBalancingConfigs = { new LoadBalancingConfig(PoolBalancerFactory.LeastOutstanding) } };
        var slack = Math.Max(0, o.DecoderAffinitySlack);
        var factory = new PoolBalancerFactory(PoolBalancerFactory.LeastOutstanding, State, ready => new DecoderPicker(ready, slack));
        _channel = WorkerChannelFactory.Create(Target, factory, serviceConfig, o, loggerFactory);
        _client = new DecoderWorker.DecoderWorkerClient(WorkerChannelFactory.Invoker(_channel, internalSecrets));
    }

    /// <summary>The configured target; null when <c>Gateway:DecoderWorkers</c> is empty.</summary>
    public WorkerTarget? Target { get; }

    /// <summary>Known and ready workers (GetInfo's <c>decoder_workers</c> is <see cref="WorkerPoolState.Known"/>).</summary>
    public WorkerPoolState State { get; } = new();

    /// <summary>The pool's channel; null when no worker is configured.</summary>
    public GrpcChannel? Channel => _channel;

    /// <summary>The raw client (no retry, balanced by in-flight calls), e.g. for <c>GetInfo</c>.</summary>
    public DecoderWorker.DecoderWorkerClient Client => _client ?? NotConfigured();

    /// <summary>
    /// Starts a generation and waits for its first message, offering the request to another decoder (at most
    /// <c>Gateway:DecoderMaxAttempts</c> decoders in all, backoff <c>Gateway:DecoderRetryBackoffMs</c> doubled per
    /// attempt, with jitter) while decoders refuse it with UNAVAILABLE or RESOURCE_EXHAUSTED before any message.
    /// </summary>
    /// <param name="request">The decode request.</param>
    /// <param name="preferredAddress">
    /// The decoder that served the session's previous turn (<see cref="DecoderGeneration.Address"/>), or null; used when
    /// it is not much busier than the least busy one (see <see cref="DecoderPicker"/>).
    /// </param>
    /// <param name="options">Deadline and cancellation of the incoming call (<see cref="WorkerCallOptions.From(ServerCallContext)"/>).</param>
    /// <returns>The stream, its first message already read; dispose it to end the call and free the decoder's count.</returns>
    /// <exception cref="RpcException">
    /// The last refusal when every attempt was refused; UNAVAILABLE when no decoder is ready within
    /// <c>Gateway:WorkerReadyWaitMs</c>; or any other failure as it came.
    /// </exception>
    public async Task<DecoderGeneration> GenerateAsync(DecodeRequest request, string? preferredAddress, CallOptions options)
    {
        var client = Client;
        var refusedBy = new HashSet<string>(StringComparer.Ordinal);
        for (var attempt = 1; ; attempt++)
        {
            await State.EnsureReadyAsync(_channel!, _readyWait, "decoder", options.CancellationToken).ConfigureAwait(false);
            var routing = new DecoderRouting(preferredAddress, refusedBy);
            var call = routing.Apply(() => client.Generate(request, options));
            try
            {
                var hasFirst = await call.ResponseStream.MoveNext(options.CancellationToken).ConfigureAwait(false);
                return new DecoderGeneration(call, routing, hasFirst ? call.ResponseStream.Current : null, attempt);
            }
            catch (RpcException ex) when (IsRefusal(ex.StatusCode) && attempt < _maxAttempts && !options.CancellationToken.IsCancellationRequested)
            {
                routing.Release();
                call.Dispose();
                if (routing.ChosenAddress is { } refused)
                {
                    refusedBy.Add(refused);
                }
                LogRefused(_logger, routing.ChosenAddress ?? "(none)", ex.StatusCode, attempt, _maxAttempts);
                await Task.Delay(Backoff(attempt), options.CancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
            {
                routing.Release();
                call.Dispose();
                throw WorkerChannelFactory.RefusedByWorker(ex, "decoder", _logger);
            }
            catch
            {
                routing.Release();
                call.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// Reserves room for <paramref name="generations"/> generations on the pool before any work is done for them (the
    /// image encode comes after): when this gateway already has as many generations open or reserved as the ready
    /// decoders can take (each its <c>max_running</c> slots + <c>max_waiting</c> queue, from GetInfo), the call is
    /// RESOURCE_EXHAUSTED at once with a retry hint, instead of encoding an image for a decoder that will refuse it.
    /// Other gateways' load is not seen here: a decoder full with it still refuses, as before. Dispose to release.
    /// </summary>
    public async ValueTask<IDisposable> ReserveAsync(int generations, CancellationToken cancellationToken)
    {
        await MaxSequenceTokensAsync(cancellationToken).ConfigureAwait(false); // learns the slots per decoder with it
        var reserved = Interlocked.Add(ref _reserved, generations);
        var capacity = _slotsPerDecoder is { } slots ? slots * Math.Max(1, State.Ready) : int.MaxValue;
        if (reserved > capacity)
        {
            Interlocked.Add(ref _reserved, -generations);
            throw RpcErrors.ResourceExhaustedException(
                $"The decoders are full: this gateway has {reserved - generations} generations running or queued on " +
                $"{Math.Max(1, State.Ready)} decoders of {_slotsPerDecoder} places each, and this call needs {generations}. Retry after the hint.");
        }
        return new Reservation(this, generations);
    }

    private sealed class Reservation(DecoderPool pool, int generations) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Add(ref pool._reserved, -generations);
            }
        }
    }

    /// <summary>
    /// The decoders' longest context (prompt + new tokens, their <c>Decoder:MaxSequenceTokens</c>), from their GetInfo,
    /// asked again when older than <see cref="ContextLimitRefresh"/>; null while no decoder has answered. A chat turn that
    /// can't fit is then refused before any decoding, as the session's limit is. The decoders behind one gateway are one
    /// deployment with one setting, so the answer of whichever decoder the balancer picks speaks for all.
    /// </summary>
    public async ValueTask<int?> MaxSequenceTokensAsync(CancellationToken cancellationToken)
    {
        if (_client is null)
        {
            return null;
        }
        var now = Environment.TickCount64;
        if (_contextLimit is { } known && now - _contextLimitAt < ContextLimitRefresh.TotalMilliseconds)
        {
            return known;
        }
        try
        {
            var info = await _client.GetInfoAsync(new DecoderInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            if (info.MaxSequenceTokens > 0)
            {
                _contextLimit = (int)info.MaxSequenceTokens;
                _slotsPerDecoder = info.MaxRunning > 0 ? (int)(info.MaxRunning + info.MaxWaiting) : null;
                _contextLimitAt = now;
            }
        }
        catch (RpcException ex)
        {
            LogContextLimitUnknown(_logger, ex.StatusCode);
        }
        return _contextLimit;
    }

    /// <summary>How long a learned <see cref="MaxSequenceTokensAsync"/> is used before the decoders are asked again.</summary>
    internal static readonly TimeSpan ContextLimitRefresh = TimeSpan.FromSeconds(30);

    public void Dispose() => _channel?.Dispose();

    /// <summary>Statuses a decoder answers with when it did not take the request: safe to offer it elsewhere.</summary>
    internal static bool IsRefusal(StatusCode status) => status is StatusCode.Unavailable or StatusCode.ResourceExhausted;

    private TimeSpan Backoff(int attempt)
    {
        var baseMs = _backoff.TotalMilliseconds * Math.Pow(2, attempt - 1);
        return TimeSpan.FromMilliseconds(baseMs * (0.5 + Random.Shared.NextDouble() * 0.5));
    }

    private static DecoderWorker.DecoderWorkerClient NotConfigured()
    {
        RpcErrors.Unavailable("No decoder worker is configured on this gateway (Gateway:DecoderWorkers).");
        return null;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "No decoder told its context limit ({Status}); the session limit alone applies until one does.")]
    private static partial void LogContextLimitUnknown(ILogger logger, StatusCode status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Decoder {Address} refused a generation with {Status} before its first message (attempt {Attempt} of {MaxAttempts}); trying another.")]
    private static partial void LogRefused(ILogger logger, string address, StatusCode status, int attempt, int maxAttempts);
}
