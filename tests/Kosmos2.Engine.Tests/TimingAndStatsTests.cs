namespace Kosmos2.Engine.Tests;

public sealed class TimingAndStatsTests
{
    private static readonly TimeSpan Ms10 = TimeSpan.FromMilliseconds(10);

    [Fact]
    public void Timings_split_a_requests_life_into_queue_prefill_first_token_and_decode()
    {
        var clock = new ManualTimeProvider();
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1), clock); // every Execute takes 10 ms
        var (_, s1) = h.Submit(promptLength: 3, maxNewTokens: 3);
        var (_, s2) = h.Submit(promptLength: 3, maxNewTokens: 2);

        h.RunToIdle();

        Assert.Equal(new RequestTimings(TimeSpan.Zero, Ms10, Ms10, 2 * Ms10), s1.Final.Timings);
        Assert.Equal(new RequestTimings(3 * Ms10, Ms10, 4 * Ms10, Ms10), s2.Final.Timings);
    }

    [Fact]
    public void Stats_report_load_steps_and_time_since_progress()
    {
        var clock = new ManualTimeProvider();
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2), clock);
        h.Submit(promptLength: 5, maxNewTokens: 4);
        h.Submit(promptLength: 5, maxNewTokens: 4);
        h.Submit(promptLength: 5, maxNewTokens: 4);

        h.Engine.Step();
        h.Engine.Step();

        var stats = h.Engine.GetStats();
        Assert.Equal((2, 1, 2, 2), (stats.Running, stats.Waiting, stats.SlotsInUse, stats.SlotsTotal));
        Assert.Equal(2, stats.StepsCompleted);
        Assert.Equal(Ms10, stats.LastStepDuration);
        Assert.Equal((2, 2), (stats.LastStepTokens, stats.LastBatchSize));
        Assert.Equal(4, stats.GeneratedTokens);
        Assert.Equal(TimeSpan.Zero, stats.SinceLastProgress);

        clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.FromSeconds(5), h.Engine.GetStats().SinceLastProgress);
    }
}
