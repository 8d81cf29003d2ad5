namespace Kosmos2.VisionWorker.Tests;

/// <summary>The vision worker refuses a dtype it does not know at start, naming the setting (the decoder does the same).</summary>
public sealed class ModelSourceTests
{
    [Fact]
    public async Task An_unknown_dtype_is_refused_at_start_naming_the_setting()
    {
        await using var worker = ServiceProcess.Start("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), new Dictionary<string, string>
        {
            ["Vision__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Vision__DType"] = "half",
            ["Vision__Device"] = "cpu",
        });

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Vision:DType", worker.RecentOutput);
        Assert.Contains("'half'", worker.RecentOutput);
    }
}
