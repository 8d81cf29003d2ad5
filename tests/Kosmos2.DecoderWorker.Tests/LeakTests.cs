namespace Kosmos2.DecoderWorker.Tests;

/// <summary>Hundreds of requests leave no tensors behind and do not grow the process.</summary>
public sealed class LeakTests
{
    [Fact]
    public async Task Live_tensors_and_resident_memory_stay_flat_over_hundreds_of_requests()
    {
        await using var worker = await DecoderWorkerHost.StartAsync();
        var prompts = GoldenPrompts.Cases();

        async Task RunRoundAsync(int requests)
        {
            for (var done = 0; done < requests; done += 8)
            {
                await Task.WhenAll(Enumerable.Range(0, 8).Select(i => worker.GenerateAsync(prompts[(done + i) % prompts.Count].ToRequest(8))));
            }
        }

        await RunRoundAsync(80); // warm: allocator pools, JIT, gRPC buffers
        var before = await worker.InfoAsync();
        await RunRoundAsync(320);
        var after = await worker.InfoAsync();

        Assert.Equal(0u, after.KvSlotsInUse);
        Assert.True(after.LiveTensors <= before.LiveTensors, $"live tensors grew from {before.LiveTensors} to {after.LiveTensors}");
        var growthMiB = ((double)after.ResidentBytes - before.ResidentBytes) / (1024 * 1024);
        Assert.True(growthMiB < 64, $"resident memory grew by {growthMiB:F1} MiB over 320 requests");
    }
}
