namespace Kosmos2.Engine.Tests;

public sealed class RunLoopTests
{
    [Fact]
    public async Task Idle_loop_blocks_without_stepping_and_wakes_on_submit()
    {
        var options = EngineHarness.Small() with { IdleHeartbeat = TimeSpan.FromMilliseconds(20) };
        using var h = new EngineHarness(options);
        using var stop = new CancellationTokenSource();
        var loop = new Thread(() => h.Engine.RunLoop(stop.Token)) { IsBackground = true };
        loop.Start();
        var firstProgress = h.Engine.GetStats().LastProgressAt;
        await Poll.UntilAsync(
            () => h.Engine.GetStats().LastProgressAt > firstProgress.AddMilliseconds(60),
            TimeSpan.FromSeconds(10),
            "idle heartbeats");
        Assert.Equal(0, h.Engine.GetStats().StepsCompleted);
        Assert.Empty(h.Runner.Plans);

        var (_, sink) = h.Submit(promptLength: 3, maxNewTokens: 4);

        await Poll.UntilAsync(() => h.Engine.GetStats().StepsCompleted == 4, TimeSpan.FromSeconds(10), "four steps");
        Assert.Equal(4, sink.Tokens.Count);
        Assert.Equal(FinishReason.Length, sink.Final.Reason);
        await stop.CancelAsync();
        Assert.True(loop.Join(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Cancelling_the_loop_aborts_every_request_left_and_refuses_new_ones()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2, maxSequenceTokens: 100_000));
        using var stop = new CancellationTokenSource();
        var sinks = Enumerable.Range(0, 5).Select(_ => h.Submit(promptLength: 3, maxNewTokens: 90_000, ignoreEos: true).Sink).ToList();
        var loop = new Thread(() => h.Engine.RunLoop(stop.Token)) { IsBackground = true };
        loop.Start();
        await Poll.UntilAsync(() => sinks[0].Tokens.Count >= 3, TimeSpan.FromSeconds(10), "streaming to start");

        await stop.CancelAsync();

        Assert.True(loop.Join(TimeSpan.FromSeconds(10)));
        Assert.All(sinks, s => Assert.Equal(FinishReason.Aborted, s.Final.Reason));
        Assert.All(sinks, s => Assert.Equal(0, s.ContractViolations));
        Assert.Equal(0, h.Runner.SlotsHeld);
        var late = h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 3), new RecordingSink());
        Assert.Equal(RejectionReason.ShuttingDown, late.Rejection);
        var stats = h.Engine.GetStats();
        Assert.Equal((0, 0, 0), (stats.Running, stats.Waiting, stats.SlotsInUse));
    }

    [Fact]
    public void Loop_calls_from_a_second_thread_are_refused()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        h.Engine.Step();

        Exception? error = null;
        var other = new Thread(() =>
        {
            try
            {
                h.Engine.Step();
            }
            catch (InvalidOperationException ex)
            {
                error = ex;
            }
        });
        other.Start();
        other.Join();

        Assert.Contains("Submit and Abort", Assert.IsType<InvalidOperationException>(error).Message, StringComparison.Ordinal);
    }
}
