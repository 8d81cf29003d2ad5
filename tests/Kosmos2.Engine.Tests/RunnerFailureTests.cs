namespace Kosmos2.Engine.Tests;

public sealed class RunnerFailureTests
{
    [Fact]
    public void A_failing_step_ends_its_requests_with_an_error_frees_their_slots_and_the_engine_goes_on()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2));
        var (_, s1) = h.Submit(promptLength: 3, maxNewTokens: 5);
        var (_, s2) = h.Submit(promptLength: 3, maxNewTokens: 5);
        var (r3, s3) = h.Submit(promptLength: 3, maxNewTokens: 5);
        h.Runner.OnExecute = plan =>
        {
            if (plan.StepIndex == 1)
            {
                throw new InvalidOperationException("CUDA out of memory");
            }
        };
        h.Engine.Step();

        h.Engine.Step();

        Assert.All([s1, s2], s => Assert.Equal(FinishReason.Error, s.Final.Reason));
        Assert.Contains("CUDA out of memory", s1.Final.Error, StringComparison.Ordinal);
        Assert.Equal([0, 1], h.Runner.Releases.Select(r => r.Slot).Order());
        h.RunToIdle();
        Assert.Equal(FinishReason.Length, s3.Final.Reason);
        Assert.Contains(h.Runner.Plans, p => p.Prefills.Any(c => c.RequestId == r3 && c.Slot == 0));
        var stats = h.Engine.GetStats();
        Assert.Equal((1L, 2L, 1L), (stats.RunnerFailures, stats.Failed, stats.Completed));
    }

    [Fact]
    public void Output_that_does_not_match_the_plan_counts_as_a_runner_failure()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (_, sink) = h.Submit(promptLength: 3, maxNewTokens: 5);
        h.Runner.RewriteOutput = (_, output) => output with { PrefillTokenIds = [-1] };

        h.Engine.Step();

        Assert.Equal(FinishReason.Error, sink.Final.Reason);
        Assert.Contains("does not match", sink.Final.Error, StringComparison.Ordinal);
        Assert.Equal(0, h.Engine.GetStats().SlotsInUse);
    }

    [Fact]
    public void A_throwing_sink_is_counted_and_does_not_disturb_other_requests()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 4), new ThrowingSink());
        var (_, healthy) = h.Submit(promptLength: 3, maxNewTokens: 4);

        h.RunToIdle();

        Assert.Equal(4, healthy.Tokens.Count);
        Assert.Equal(FinishReason.Length, healthy.Final.Reason);
        Assert.Equal(5, h.Engine.GetStats().SinkFaults);
        Assert.Equal(0, h.Engine.GetStats().SlotsInUse);
    }

    private sealed class ThrowingSink : IRequestSink
    {
        public void OnToken(int tokenId) => throw new InvalidOperationException("client gone");

        public void OnFinished(GenerationResult result) => throw new InvalidOperationException("client gone");
    }
}
