namespace Kosmos2.Engine.Tests;

public sealed class ChunkedPrefillTests
{
    [Fact]
    public void Long_prompt_is_prefilled_over_several_steps_while_running_streams_keep_decoding()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 4, maxTokensPerStep: 8));
        var (r1, s1) = h.Submit(promptLength: 3, maxNewTokens: 30);
        h.Engine.Step();
        var stepsBefore = h.Runner.Plans.Count;

        var (r2, s2) = h.Submit(promptLength: 20, maxNewTokens: 5);
        for (var i = 0; i < 4; i++)
        {
            h.Engine.Step();
        }

        var plans = h.Runner.Plans.Skip(stepsBefore).ToList();
        Assert.Equal(
            [new ChunkRecord(r2, 1, 0, 7, false), new ChunkRecord(r2, 1, 7, 14, false), new ChunkRecord(r2, 1, 14, 20, true)],
            plans.Take(3).Select(p => Assert.Single(p.Prefills)));
        Assert.All(plans, p => Assert.Contains(p.Decodes, d => d.RequestId == r1));
        Assert.All(plans, p => Assert.True(p.TokenCount <= 8));
        Assert.Empty(plans[3].Prefills);
        Assert.Equal([r1, r2], plans[3].Decodes.Select(d => d.RequestId));
        Assert.Equal(5, s1.Tokens.Count); // one per step, never stalled by r2's prompt
        Assert.Equal(2, s2.Tokens.Count);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Several_short_prompts_share_one_step_budget_and_a_partial_prefill_goes_first_next_step()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 4, maxTokensPerStep: 10));
        var (r1, _) = h.Submit(promptLength: 4, maxNewTokens: 5);
        var (r2, _) = h.Submit(promptLength: 4, maxNewTokens: 5);
        var (r3, _) = h.Submit(promptLength: 4, maxNewTokens: 5);
        var (r4, _) = h.Submit(promptLength: 4, maxNewTokens: 5);

        h.Engine.Step();
        Assert.Equal(
            [new ChunkRecord(r1, 0, 0, 4, true), new ChunkRecord(r2, 1, 0, 4, true), new ChunkRecord(r3, 2, 0, 2, false)],
            h.Runner.LastPlan.Prefills);

        h.Engine.Step();
        Assert.Equal([r1, r2], h.Runner.LastPlan.Decodes.Select(d => d.RequestId));
        Assert.Equal(
            [new ChunkRecord(r3, 2, 2, 4, true), new ChunkRecord(r4, 3, 0, 4, true)],
            h.Runner.LastPlan.Prefills);
        h.RunToIdle();
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void A_prompt_of_exactly_the_budget_runs_in_one_chunk_when_nothing_is_decoding()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxTokensPerStep: 8));
        var (r1, sink) = h.Submit(promptLength: 8, maxNewTokens: 1);

        h.Engine.Step();

        Assert.Equal([new ChunkRecord(r1, 0, 0, 8, true)], h.Runner.LastPlan.Prefills);
        Assert.Equal(FinishReason.Length, sink.Final.Reason);
    }
}
