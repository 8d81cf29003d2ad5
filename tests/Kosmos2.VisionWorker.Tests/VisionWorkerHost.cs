using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>A real vision worker process on the golden checkpoint (float32), optionally with a real Redis.</summary>
internal sealed class VisionWorkerHost : IAsyncDisposable
{
    private VisionWorkerHost(ServiceProcess process)
    {
        Process = process;
        Client = new Contracts.Internal.V1.VisionWorker.VisionWorkerClient(process.Channel);
    }

    public ServiceProcess Process { get; }

    public Contracts.Internal.V1.VisionWorker.VisionWorkerClient Client { get; }

    public static async Task<VisionWorkerHost> StartAsync(RedisServer? redis, Dictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["Vision__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Vision__DType"] = "float32",
            ["Vision__Device"] = "cpu",
        };
        if (redis is not null)
        {
            environment["Redis__Cache"] = redis.ConnectionString;
        }
        foreach (var (key, value) in extra ?? [])
        {
            environment[key] = value;
        }
        return new VisionWorkerHost(await ServiceProcess.StartHealthyAsync("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), environment, TimeSpan.FromSeconds(90)));
    }

    public Task<VisionInfo> InfoAsync() => Client.GetInfoAsync(new VisionInfoRequest()).ResponseAsync;

    public Task<EncodeResponse> EncodeAsync(byte[] image, string salt = "") =>
        Client.EncodeAsync(new EncodeRequest { Image = Google.Protobuf.ByteString.CopyFrom(image), CacheSalt = salt }).ResponseAsync;

    public async ValueTask DisposeAsync() => await Process.DisposeAsync();
}
