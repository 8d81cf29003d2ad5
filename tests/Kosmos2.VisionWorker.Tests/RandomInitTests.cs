using Kosmos2.Testing;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>Vision:RandomInit serves a seeded random model of a given config with no checkpoint folder (benchmarks).</summary>
public sealed class RandomInitTests
{
    [Fact]
    public async Task A_worker_with_random_weights_from_a_config_json_comes_up_healthy_and_encodes_an_image()
    {
        await using var worker = await VisionWorkerHost.StartAsync(redis: null, new Dictionary<string, string>
        {
            ["Vision__ModelDir"] = "",
            ["Vision__RandomInit"] = Path.Combine(RepoPaths.GoldenModelDir, "config.json"),
        });

        var reply = await worker.EncodeAsync(TestImages.RandomPng(64, 48, seed: 5));

        Assert.False(reply.CacheHit);
        Assert.Equal(2, reply.Embeddings.Shape.Count);
        var info = await worker.InfoAsync();
        Assert.Equal("random-model", info.Model.ModelId);
        Assert.StartsWith("rnd", info.Model.Fingerprint);
        Assert.Contains("RANDOM WEIGHTS", worker.Process.RecentOutput);
    }
}
