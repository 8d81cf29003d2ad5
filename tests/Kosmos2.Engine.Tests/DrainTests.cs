namespace Kosmos2.Engine.Tests;

/// <summary>StopAdmitting (SIGTERM): what waits for a slot is refused at the next step, what runs finishes.</summary>
public sealed class DrainTests
{
    [Fact]
    public void After_stop_admitting_waiting_requests_are_refused_at_the_next_step_and_running_ones_finish()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2));
        var running = new[] { h.Submit(promptLength: 4, maxNewTokens: 6, ignoreEos: true), h.Submit(promptLength: 4, maxNewTokens: 6, ignoreEos: true) };
        var waiting = new[] { h.Submit(promptLength: 4, maxNewTokens: 6), h.Submit(promptLength: 4, maxNewTokens: 6), h.Submit(promptLength: 4, maxNewTokens: 6) };
        h.Engine.Step();
        Assert.Equal(3, h.Engine.GetStats().Waiting);

        h.Engine.StopAdmitting();
        var late = new RecordingSink();
        var refused = h.Engine.Submit(EngineHarness.Request(h.Prompt(4), 6), late);
        h.Engine.Step();

        Assert.Equal(RejectionReason.ShuttingDown, refused.Rejection);
        Assert.Equal(0, late.EventCount);
        foreach (var (_, sink) in waiting)
        {
            Assert.Equal(FinishReason.Refused, sink.Final.Reason);
            Assert.Empty(sink.Tokens);
        }
        Assert.Equal(0, h.Engine.GetStats().Waiting);
        Assert.All(running, r => Assert.False(r.Sink.IsFinished));

        h.RunToIdle();
        Assert.All(running, r => Assert.Equal(FinishReason.Length, r.Sink.Final.Reason));
        Assert.All(running, r => Assert.Equal(6, r.Sink.Tokens.Count));
        // Refused after acceptance counts as aborted (accepted = completed + aborted + failed); the late submit as rejected.
        Assert.Equal((1L, 3L, 2L), (h.Engine.GetStats().Rejected, h.Engine.GetStats().Aborted, h.Engine.GetStats().Completed));
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void A_running_request_can_still_be_aborted_while_the_engine_drains()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1));
        var (id, sink) = h.Submit(promptLength: 4, maxNewTokens: 20, ignoreEos: true);
        h.Engine.Step();
        h.Engine.StopAdmitting();

        h.Engine.Abort(id);
        h.Engine.Step();

        Assert.Equal(FinishReason.Aborted, sink.Final.Reason);
        h.AssertRunnerSawNoViolations();
    }
}

/// <summary>EngineOptions.MaxQueueWait: a request that waited longer for a slot is refused, nothing generated; the rest run.</summary>
public sealed class QueueWaitTests
{
    [Fact]
    public void A_request_waiting_longer_than_the_bound_is_refused_at_the_next_step_and_one_within_it_is_admitted_later()
    {
        var clock = new ManualTimeProvider();
        var options = EngineHarness.Small(maxRunning: 1) with { MaxQueueWait = TimeSpan.FromSeconds(2) };
        using var h = new EngineHarness(options, clock);
        var running = h.Submit(promptLength: 4, maxNewTokens: 6, ignoreEos: true);
        var overdue = h.Submit(promptLength: 4, maxNewTokens: 6);
        h.Engine.Step();

        clock.Advance(TimeSpan.FromSeconds(1.5));
        var fresh = h.Submit(promptLength: 4, maxNewTokens: 6);
        h.Engine.Step();
        Assert.False(overdue.Sink.IsFinished); // 1.5 s: within the bound

        clock.Advance(TimeSpan.FromSeconds(1));
        h.Engine.Step();

        Assert.Equal(FinishReason.QueueTimedOut, overdue.Sink.Final.Reason);
        Assert.Empty(overdue.Sink.Tokens);
        Assert.False(fresh.Sink.IsFinished); // 1 s in the queue
        h.RunToIdle();
        Assert.Equal(FinishReason.Length, running.Sink.Final.Reason);
        Assert.NotEqual(FinishReason.QueueTimedOut, fresh.Sink.Final.Reason);
        Assert.Equal(0, h.Engine.GetStats().Waiting);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void A_request_forecast_to_wait_past_the_bound_is_refused_at_the_next_step_with_the_forecast_as_its_hint()
    {
        using var h = OneSlotWithBound(out var clock);
        var running = h.Submit(promptLength: 4, maxNewTokens: 20, ignoreEos: true);
        var queued = h.Submit(promptLength: 4, maxNewTokens: 6);
        h.Engine.Step(); // measures a step; the running request's first token
        var start = clock.GetTimestamp();

        h.Engine.Step();

        // 19 tokens left at 100 ms a step: about 1.9 s for the slot, past the 1 s bound; refused after 100 ms, not 1 s.
        var result = queued.Sink.Final;
        Assert.Equal(FinishReason.QueueTimedOut, result.Reason);
        Assert.Empty(queued.Sink.Tokens);
        Assert.InRange(result.ForecastQueueWait!.Value.TotalSeconds, 1.7, 2.1);
        Assert.True(clock.GetElapsedTime(start) < h.Options.MaxQueueWait);
        h.RunToIdle();
        Assert.Equal(FinishReason.Length, running.Sink.Final.Reason);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void A_request_forecast_within_the_bound_waits_and_runs()
    {
        using var h = OneSlotWithBound(out _);
        var running = h.Submit(promptLength: 4, maxNewTokens: 5, ignoreEos: true);
        var queued = h.Submit(promptLength: 4, maxNewTokens: 6, ignoreEos: true);

        h.RunToIdle();

        Assert.Equal(FinishReason.Length, running.Sink.Final.Reason);
        Assert.Equal(FinishReason.Length, queued.Sink.Final.Reason);
        Assert.Null(queued.Sink.Final.ForecastQueueWait);
    }

    [Fact]
    public void The_forecast_counts_the_answer_lengths_measured_here_not_only_the_token_limit()
    {
        using var h = OneSlotWithBound(out _);
        // Earlier answers ended with </s> (id 2) after 3 tokens, far below their limit of 50.
        for (var i = 0; i < 3; i++)
        {
            var earlier = h.Submit(promptLength: 4, maxNewTokens: 50);
            h.Runner.Script(earlier.Id, 7, 8, 2);
            h.RunToIdle();
            Assert.Equal(FinishReason.Eos, earlier.Sink.Final.Reason);
        }
        var running = h.Submit(promptLength: 4, maxNewTokens: 50);
        h.Runner.Script(running.Id, 7, 8, 2);
        var queued = h.Submit(promptLength: 4, maxNewTokens: 50);
        h.Runner.Script(queued.Id, 7, 8, 2);

        h.RunToIdle();

        // By the token limit alone the queued request would wait 49 steps (4.9 s) and be refused; by the measured
        // lengths a slot frees in about 2 steps.
        Assert.Equal(FinishReason.Eos, running.Sink.Final.Reason);
        Assert.Equal(FinishReason.Eos, queued.Sink.Final.Reason);
    }

    /// <summary>One slot, a queue wait bound of 1 s, and fake steps of 100 ms on a manual clock.</summary>
    private static EngineHarness OneSlotWithBound(out ManualTimeProvider clock)
    {
        clock = new ManualTimeProvider();
        var h = new EngineHarness(EngineHarness.Small(maxRunning: 1) with { MaxQueueWait = TimeSpan.FromSeconds(1) }, clock);
        h.Runner.StepDuration = TimeSpan.FromMilliseconds(100);
        return h;
    }

    [Fact]
    public void With_no_bound_a_request_waits_as_long_as_it_takes()
    {
        var clock = new ManualTimeProvider();
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1), clock);
        var running = h.Submit(promptLength: 4, maxNewTokens: 6, ignoreEos: true);
        var queued = h.Submit(promptLength: 4, maxNewTokens: 6);
        h.Engine.Step();
        clock.Advance(TimeSpan.FromHours(1));

        h.RunToIdle();

        Assert.Equal(FinishReason.Length, running.Sink.Final.Reason);
        Assert.NotEqual(FinishReason.QueueTimedOut, queued.Sink.Final.Reason);
    }
}
