using Kosmos2.Testing;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>Vision:MaxBatch: by device when 0 (one image per forward on a CPU), as set otherwise.</summary>
public sealed class BatchingTests
{
    [Fact]
    public async Task On_a_cpu_by_default_concurrent_new_images_are_encoded_one_per_forward()
    {
        await using var worker = await VisionWorkerHost.StartAsync(redis: null, new() { ["Vision__MaxBatchWaitMs"] = "200" });
        var before = await worker.InfoAsync();

        var replies = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => worker.EncodeAsync(TestImages.RandomPng(64, 48, seed: 300 + i))));

        var after = await worker.InfoAsync();
        Assert.Equal(1u, after.MaxBatch);
        Assert.Equal(6ul, after.ImagesEncoded - before.ImagesEncoded);
        Assert.Equal(6ul, after.Forwards - before.Forwards);
        Assert.All(replies, r => Assert.False(r.CacheHit));
    }

    [Fact]
    public async Task A_set_batch_size_holds_and_concurrent_new_images_share_forwards()
    {
        // 200 ms to gather a batch: six requests sent at once arrive well within it.
        await using var worker = await VisionWorkerHost.StartAsync(redis: null, new() { ["Vision__MaxBatch"] = "4", ["Vision__MaxBatchWaitMs"] = "200" });
        var before = await worker.InfoAsync();

        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => worker.EncodeAsync(TestImages.RandomPng(64, 48, seed: 400 + i))));

        var after = await worker.InfoAsync();
        Assert.Equal(4u, after.MaxBatch);
        Assert.Equal(6ul, after.ImagesEncoded - before.ImagesEncoded);
        Assert.True(after.Forwards - before.Forwards < 6, $"{after.Forwards - before.Forwards} forwards for 6 images at max batch 4");
    }
}
