using Kosmos2.Launch;

namespace Kosmos2.ServingBenchmarks;

/// <summary>
/// Redis, a vision worker, a decoder worker and the gateway on the full-size architecture with seeded random bf16
/// weights (<see cref="GatewayBench.WriteFullSizeConfig"/>: the golden tokenizer's vocabulary, so the gateway's
/// tokenizer matches); every process on free loopback ports, stopped in reverse order on dispose.
/// </summary>
internal sealed class FullSizeCluster : IAsyncDisposable
{
    private readonly DirectoryInfo _configDir;
    private readonly RedisServer _redis;

    private FullSizeCluster(DirectoryInfo configDir, RedisServer redis, ServiceProcess vision, ServiceProcess decoder, ServiceProcess gateway)
    {
        _configDir = configDir;
        _redis = redis;
        Vision = vision;
        Decoder = decoder;
        Gateway = gateway;
    }

    public ServiceProcess Vision { get; }

    public ServiceProcess Decoder { get; }

    public ServiceProcess Gateway { get; }

    /// <summary>
    /// What every full-size benchmark cluster gives its workers: sessions and the embedding cache in
    /// <paramref name="redis"/>, both workers on the random-weight model at <paramref name="configPath"/>, bf16 on the CPU.
    /// </summary>
    public static Dictionary<string, string> CommonEnvironment(string configPath, string redis) => new()
    {
        ["Redis__Sessions"] = redis,
        ["Redis__Cache"] = redis,
        ["Vision__RandomInit"] = configPath,
        ["Vision__DType"] = "bfloat16",
        ["Vision__Device"] = "cpu",
        ["Decoder__RandomInit"] = configPath,
        ["Decoder__DType"] = "bfloat16",
        ["Decoder__Device"] = "cpu",
        // The machine is shared: under a load of 30 one full-size step took over a minute, the decoder reported
        // a stall (60 s default) and the first call ended with UNAVAILABLE. A benchmark measures, it does not police.
        ["Decoder__StallTimeoutSeconds"] = "900",
    };

    public static async Task<FullSizeCluster> StartAsync()
    {
        var configDir = Directory.CreateTempSubdirectory("kosmos2-bench-");
        var configPath = GatewayBench.WriteFullSizeConfig(configDir.FullName);
        Progress.Log($"model: full-size text/vision dims (Kosmos2Config.Default) with vocab 2037 ({configPath}); "
            + "a decode step is dominated by the 24 decoder layers, so the smaller vocabulary changes little");
        var redis = await RedisServer.StartAsync();
        var common = CommonEnvironment(configPath, redis.ConnectionString);
        var vision = Services.Start("vision-worker", "vision-worker", "Kosmos2.VisionWorker", new(common));
        var decoder = Services.Start("decoder-worker", "decoder-worker", "Kosmos2.DecoderWorker", new(common));
        await Services.WaitAsync(vision, decoder);
        var gateway = Services.Start("gateway", "gateway", "Kosmos2.Gateway",
            ClusterEnvironment.Gateway(common, RepoPaths.GoldenModelDir, vision.Address, [decoder.Address]));
        await Services.WaitAsync(gateway);
        return new FullSizeCluster(configDir, redis, vision, decoder, gateway);
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Decoder.DisposeAsync();
        await Vision.DisposeAsync();
        await _redis.DisposeAsync();
        _configDir.Delete(recursive: true);
    }
}
