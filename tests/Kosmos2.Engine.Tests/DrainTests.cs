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
