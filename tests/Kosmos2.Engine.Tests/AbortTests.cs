namespace Kosmos2.Engine.Tests;

public sealed class AbortTests
{
    [Fact]
    public void Abort_from_another_thread_frees_the_slot_before_the_next_step_and_is_reported_once()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1));
        var (r1, s1) = h.Submit(promptLength: 3, maxNewTokens: 30);
        var (r2, _) = h.Submit(promptLength: 3, maxNewTokens: 30);
        h.Engine.Step();
        h.Engine.Step();

        var caller = new Thread(() =>
        {
            h.Engine.Abort(r1);
            h.Engine.Abort(r1);
        });
        caller.Start();
        caller.Join();
        h.Engine.Step();

        var next = h.Runner.LastPlan;
        Assert.False(next.Contains(r1));
        Assert.Equal([new ChunkRecord(r2, 0, 0, 3, true)], next.Prefills); // r1's slot, same step
        Assert.Equal([(1L, 0)], h.Runner.Releases); // released during the drain, before plan 2 ran
        Assert.Equal(FinishReason.Aborted, s1.Final.Reason);
        Assert.Equal(2, s1.Final.GeneratedTokens);
        h.Engine.Abort(r1);
        h.RunToIdle();
        Assert.Single(s1.Results);
        Assert.Equal(0, s1.ContractViolations);
        Assert.Equal(1, h.Engine.GetStats().Aborted);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Abort_of_a_waiting_request_reports_it_once_and_it_never_runs()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1));
        h.Submit(promptLength: 3, maxNewTokens: 5);
        var (r2, s2) = h.Submit(promptLength: 3, maxNewTokens: 5);
        h.Engine.Step();
        Assert.Equal(1, h.Engine.GetStats().Waiting);

        h.Engine.Abort(r2);
        h.RunToIdle();

        Assert.DoesNotContain(h.Runner.Plans, p => p.Contains(r2));
        Assert.Equal(FinishReason.Aborted, s2.Final.Reason);
        Assert.Empty(s2.Tokens);
        Assert.Equal(TimeSpan.Zero, s2.Final.Timings.TimeToFirstToken);
        Assert.Equal(0, h.Engine.GetStats().Waiting);
    }

    [Fact]
    public void Abort_right_after_submit_in_the_same_drain_ends_the_request_without_running_it()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 5);

        h.Engine.Abort(id);

        Assert.False(h.Engine.Step());
        Assert.Empty(h.Runner.Plans);
        Assert.Equal(FinishReason.Aborted, sink.Final.Reason);
    }

    [Fact]
    public void Abort_after_finish_or_of_an_unknown_id_is_ignored()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 2);
        h.RunToIdle();

        h.Engine.Abort(id);
        h.Engine.Abort(12345);
        h.Engine.Step();

        Assert.Equal(FinishReason.Length, sink.Final.Reason);
        Assert.Equal(0, h.Engine.GetStats().Aborted);
    }

    [Fact]
    public async Task Abort_while_the_loop_runs_on_its_own_thread_ends_the_stream_and_frees_the_slot()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxSequenceTokens: 100_000, maxTokensPerStep: 64));
        using var stop = new CancellationTokenSource();
        var loop = new Thread(() => h.Engine.RunLoop(stop.Token)) { IsBackground = true, Name = "engine-loop" };
        loop.Start();
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 90_000, ignoreEos: true);
        await Poll.UntilAsync(() => sink.Tokens.Count >= 5, TimeSpan.FromSeconds(10), "tokens to stream");

        h.Engine.Abort(id);

        await Poll.UntilAsync(() => sink.IsFinished, TimeSpan.FromSeconds(10), "the aborted result");
        await Poll.UntilAsync(() => h.Engine.GetStats().SlotsInUse == 0, TimeSpan.FromSeconds(10), "the slot to be free");
        await stop.CancelAsync();
        Assert.True(loop.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(FinishReason.Aborted, sink.Final.Reason);
        Assert.Equal(sink.Tokens, sink.Final.GeneratedTokenIds);
        Assert.Equal(0, sink.ContractViolations);
        Assert.Equal(0, h.Runner.SlotsHeld);
        h.AssertRunnerSawNoViolations();
    }
}
