using System.Net;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Routing;

/// <summary>Builds the one channel per worker pool, with client-side balancing and no HTTP timeouts.</summary>
internal static partial class WorkerChannelFactory
{
    /// <summary>
    /// What the caller gets when a worker refuses the gateway itself (UNAUTHENTICATED: the internal secrets differ): a
    /// server error, not UNAUTHENTICATED, which would tell the caller its API key is wrong. The gateway's log says
    /// what to fix.
    /// </summary>
    public static RpcException RefusedByWorker(RpcException refusal, string pool, ILogger logger)
    {
        LogRefusedByWorker(logger, pool, refusal.Status.Detail);
        return new RpcException(new Status(StatusCode.Internal,
            $"The {pool} workers refused this gateway's calls: a deployment error on the server side, not in the request."));
    }

    [LoggerMessage(Level = LogLevel.Error, Message =
        "The {Pool} workers refused this gateway ({Detail}): give the gateway and every worker the same Internal:Secret or Internal:SecretFile.")]
    private static partial void LogRefusedByWorker(ILogger logger, string pool, string detail);

    /// <summary>
    /// The calls of a pool's client: each carries the internal secret (<see cref="InternalCallAuth.Header"/>) when one is
    /// configured, which workers that have a secret require. Added to the metadata rather than as call credentials,
    /// which Grpc.Net.Client sends over plaintext (h2c) channels only when told to do so unsafely.
    /// </summary>
    public static CallInvoker Invoker(GrpcChannel channel, InternalSecrets? secrets) =>
        secrets?.CallerSecret is { } secret
            ? channel.Intercept(metadata =>
            {
                metadata.Add(InternalCallAuth.Header, secret);
                return metadata;
            })
            : channel.CreateCallInvoker();

    public static GrpcChannel Create(
        WorkerTarget target, LoadBalancerFactory balancer, ServiceConfig serviceConfig, GatewayOptions options, ILoggerFactory loggerFactory)
    {
        var services = new ServiceCollection();
        target.AddResolver(services, TimeSpan.FromSeconds(Math.Max(1, options.DnsRefreshSeconds)));
        services.AddSingleton(balancer);

        // Requests carry whole images (up to Gateway:MaxImageBytes); retries buffer them, so the buffer must hold one.
        var maxMessage = (int)Math.Min(int.MaxValue, options.MaxImageBytes + (1 << 20));
        return GrpcChannel.ForAddress(target.ChannelAddress, new GrpcChannelOptions
        {
            Credentials = target.Secure ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
            ServiceConfig = serviceConfig,
            ServiceProvider = services.BuildServiceProvider(),
            LoggerFactory = loggerFactory,
            HttpHandler = new SocketsHttpHandler
            {
                // No request/response timeout here on purpose: a generation stream may run for minutes, and a
                // deadline is the caller's to set (propagated from the client's call).
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                KeepAlivePingDelay = TimeSpan.FromSeconds(30),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                ConnectTimeout = TimeSpan.FromSeconds(5),
                AutomaticDecompression = DecompressionMethods.None,
            },
            // grpc's default reconnect backoff starts at 1 s and grows to 120 s: a worker that was down for a minute would
            // then sit unused for up to two more. Workers restart in seconds, so retry often.
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(200),
            MaxReconnectBackoff = TimeSpan.FromSeconds(5),
            MaxReceiveMessageSize = maxMessage,
            MaxSendMessageSize = maxMessage,
            MaxRetryBufferPerCallSize = maxMessage,
            MaxRetryBufferSize = 8L * maxMessage,
            DisposeHttpClient = true,
        });
    }
}
