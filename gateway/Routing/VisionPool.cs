using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Kosmos2.Contracts.Internal.V1;
using Microsoft.Extensions.Options;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// The vision workers: one channel, round robin, and the channel's own retry of unary calls on UNAVAILABLE only
/// (an Encode is idempotent: the worker's cache makes a repeat cheap; any other status is an answer, not a fault).
/// </summary>
public sealed class VisionPool : IDisposable
{
    private readonly GrpcChannel? _channel;
    private readonly VisionWorker.VisionWorkerClient? _client;
    private readonly TimeSpan _readyWait;
    private readonly ILogger<VisionPool> _logger;

    public VisionPool(IOptions<GatewayOptions> options, ILoggerFactory loggerFactory, InternalSecrets? internalSecrets = null)
    {
        var o = options.Value;
        _logger = loggerFactory.CreateLogger<VisionPool>();
        _readyWait = TimeSpan.FromMilliseconds(Math.Max(0, o.WorkerReadyWaitMs));
        EncodeTimeout = TimeSpan.FromMilliseconds(Math.Max(1, o.VisionEncodeTimeoutMs));
        Target = WorkerTarget.Parse(o.VisionWorkers, "vision", $"Gateway:{nameof(GatewayOptions.VisionWorkers)}");
        if (Target is null)
        {
            return;
        }
        var serviceConfig = new ServiceConfig
        {
            LoadBalancingConfigs = { new LoadBalancingConfig(PoolBalancerFactory.RoundRobin) },
            MethodConfigs =
            {
                new MethodConfig
                {
                    Names = { new MethodName { Service = "kosmos2.internal.v1.VisionWorker" } },
                    RetryPolicy = new RetryPolicy
                    {
                        MaxAttempts = Math.Max(2, o.VisionMaxAttempts),
                        InitialBackoff = TimeSpan.FromMilliseconds(50),
                        MaxBackoff = TimeSpan.FromSeconds(1),
                        BackoffMultiplier = 2,
                        RetryableStatusCodes = { StatusCode.Unavailable },
                    },
                },
            },
        };
        var factory = new PoolBalancerFactory(PoolBalancerFactory.RoundRobin, State, ready => new RoundRobinPicker(ready));
        _channel = WorkerChannelFactory.Create(Target, factory, serviceConfig, o, loggerFactory);
        _client = new VisionWorker.VisionWorkerClient(WorkerChannelFactory.Invoker(_channel, internalSecrets));
    }

    /// <summary>Longest an encode may take when the caller's deadline is later (<c>Gateway:VisionEncodeTimeoutMs</c>).</summary>
    public TimeSpan EncodeTimeout { get; }

    /// <summary>The configured target; null when <c>Gateway:VisionWorkers</c> is empty.</summary>
    public WorkerTarget? Target { get; }

    /// <summary>Known and ready workers (GetInfo's <c>vision_workers</c> is <see cref="WorkerPoolState.Known"/>).</summary>
    public WorkerPoolState State { get; } = new();

    /// <summary>The pool's channel; null when no worker is configured.</summary>
    public GrpcChannel? Channel => _channel;

    /// <summary>The client; UNAVAILABLE when no vision worker is configured.</summary>
    public VisionWorker.VisionWorkerClient Client => _client ?? NotConfigured();

    /// <summary>
    /// Encodes one image; pass <see cref="WorkerCallOptions.From(ServerCallContext)"/> of the incoming call. UNAVAILABLE when no vision
    /// worker is ready within <c>Gateway:WorkerReadyWaitMs</c>.
    /// </summary>
    public async Task<EncodeResponse> EncodeAsync(EncodeRequest request, CallOptions options)
    {
        var client = Client;
        await State.EnsureReadyAsync(_channel!, _readyWait, "vision", options.CancellationToken).ConfigureAwait(false);
        try
        {
            return await client.EncodeAsync(request, options).ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
        {
            throw WorkerChannelFactory.RefusedByWorker(ex, "vision", _logger);
        }
    }

    public void Dispose() => _channel?.Dispose();

    private static VisionWorker.VisionWorkerClient NotConfigured()
    {
        RpcErrors.Unavailable("No vision worker is configured on this gateway (Gateway:VisionWorkers).");
        return null;
    }
}
