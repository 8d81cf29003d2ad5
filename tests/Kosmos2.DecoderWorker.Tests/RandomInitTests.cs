using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>Decoder:RandomInit serves a seeded random model of a given config with no checkpoint folder (benchmarks).</summary>
public sealed class RandomInitTests
{
    [Fact]
    public async Task A_worker_with_random_weights_from_a_config_json_comes_up_healthy_and_serves_a_request()
    {
        await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = "",
            ["Decoder__RandomInit"] = Path.Combine(RepoPaths.GoldenModelDir, "config.json"),
            ["Decoder__MaxSequenceTokens"] = "256",
        });
        var request = GoldenPrompts.Cases()[0].ToRequest(4);
        request.Stopping.IgnoreEos = true;

        var (tokens, final, _) = await worker.GenerateAsync(request);

        Assert.Equal(4, tokens.Count);
        Assert.Equal(DecodeFinishReason.Length, final.FinishReason);
        var info = await worker.InfoAsync();
        Assert.True(info.Ready);
        Assert.Equal("random-model", info.Model.ModelId);
        Assert.Contains("RANDOM WEIGHTS", worker.Process.RecentOutput);
    }
}
