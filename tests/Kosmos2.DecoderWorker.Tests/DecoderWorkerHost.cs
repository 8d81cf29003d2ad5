using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>A real decoder worker process on the golden checkpoint (float32).</summary>
internal sealed class DecoderWorkerHost : IAsyncDisposable
{
    private DecoderWorkerHost(ServiceProcess process)
    {
        Process = process;
        Client = new Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient(process.Channel);
    }

    public ServiceProcess Process { get; }

    public Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient Client { get; }

    public static async Task<DecoderWorkerHost> StartAsync(Dictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Decoder__DType"] = "float32",
            ["Decoder__Device"] = "cpu",
        };
        foreach (var (key, value) in extra ?? [])
        {
            environment[key] = value;
        }
        return new DecoderWorkerHost(await ServiceProcess.StartHealthyAsync("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), environment, TimeSpan.FromSeconds(90)));
    }

    public Task<DecoderInfo> InfoAsync() => Client.GetInfoAsync(new DecoderInfoRequest()).ResponseAsync;

    /// <summary>Runs one request to the end; returns all streamed tokens and the final message.</summary>
    public async Task<(List<int> Tokens, DecodeFinal Final, int Messages)> GenerateAsync(DecodeRequest request, DateTime? deadline = null,
        Metadata? headers = null, CancellationToken cancellationToken = default)
    {
        using var call = Client.Generate(request, headers, deadline: deadline, cancellationToken: cancellationToken);
        var tokens = new List<int>();
        DecodeFinal? final = null;
        var messages = 0;
        await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            messages++;
            tokens.AddRange(message.TokenIds.Select(t => (int)t));
            final ??= message.Final;
        }
        return (tokens, final ?? throw new InvalidOperationException("The stream ended without a final message."), messages);
    }

    public async ValueTask DisposeAsync() => await Process.DisposeAsync();
}
