namespace Kosmos2.Launch;

/// <summary>
/// The whole system on loopback as it really runs, for tests and benchmarks: a real redis-server and the three services as processes,
/// configured through environment variables only, on the golden checkpoint (float32 unless told otherwise).
/// The session Redis keeps an append-only file like the deployment's, so <see cref="RedisServer.StopAsync"/> and
/// <see cref="RedisServer.RestartAsync"/> on it are a restart, not a wipe. The embedding cache shares that server
/// (as <c>kosmos2 up</c> runs it) unless a separate cache server is asked for.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly Dictionary<string, string> _gatewayEnvironment;

    private readonly RedisServer? _separateCache;

    private LocalCluster(RedisServer redis, RedisServer? separateCache, ServiceProcess vision, ServiceProcess decoder, ServiceProcess gateway, Dictionary<string, string> gatewayEnvironment)
    {
        Redis = redis;
        _separateCache = separateCache;
        Vision = vision;
        Decoder = decoder;
        Gateway = gateway;
        _gatewayEnvironment = gatewayEnvironment;
    }

    /// <summary>The session store (Redis__Sessions), persistent.</summary>
    public RedisServer Redis { get; }

    /// <summary>The embedding cache (Redis__Cache): <see cref="Redis"/> unless started with a separate cache.</summary>
    public RedisServer CacheRedis => _separateCache ?? Redis;

    public ServiceProcess Vision { get; }

    public ServiceProcess Decoder { get; }

    public ServiceProcess Gateway { get; private set; }

    /// <summary>Starts everything and waits until all report SERVING.</summary>
    /// <param name="extra">Settings added to every service's environment (e.g. OTLP), and to the gateway's (e.g. API keys).</param>
    /// <param name="separateCacheRedis">Run the embedding cache on its own redis-server (<see cref="CacheRedis"/>).</param>
    public static async Task<LocalCluster> StartAsync(IReadOnlyDictionary<string, string>? extra = null, string modelDir = "", string dtype = "float32", bool separateCacheRedis = false)
    {
        var model = string.IsNullOrEmpty(modelDir) ? RepoPaths.GoldenModelDir : modelDir;
        var redis = await RedisServer.StartAsync(persistent: true, password: null);
        var cache = separateCacheRedis ? await RedisServer.StartAsync() : null;
        var common = ClusterEnvironment.Common(model, dtype, redis.ConnectionString, (cache ?? redis).ConnectionString);
        common["Vision__Device"] = "cpu";
        common["Decoder__Device"] = "cpu";
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            common[key] = value;
        }
        var vision = ServiceProcess.Start("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), common);
        var decoder = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), common);
        var gatewayEnvironment = ClusterEnvironment.Gateway(common, model, vision.Address, [decoder.Address]);
        var gateway = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), gatewayEnvironment);
        var cluster = new LocalCluster(redis, cache, vision, decoder, gateway, gatewayEnvironment);
        try
        {
            await Task.WhenAll(
                vision.WaitHealthyAsync(TimeSpan.FromSeconds(120)),
                decoder.WaitHealthyAsync(TimeSpan.FromSeconds(120)),
                gateway.WaitHealthyAsync(TimeSpan.FromSeconds(120)));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Stops the gateway (SIGTERM) and starts a new one on the same port: sessions must survive this.</summary>
    public async Task RestartGatewayAsync()
    {
        var port = Gateway.Port;
        await Gateway.DisposeAsync();
        Gateway = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), _gatewayEnvironment, port);
        await Gateway.WaitHealthyAsync(TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Decoder.DisposeAsync();
        await Vision.DisposeAsync();
        await Redis.DisposeAsync();
        if (_separateCache is not null)
        {
            await _separateCache.DisposeAsync();
        }
    }
}
