namespace Kosmos2.Engine.Tests;

public sealed class ContinuousBatchingTests
{
    [Fact]
    public void Request_arriving_mid_stream_joins_at_the_next_step()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (r1, s1) = h.Submit(promptLength: 4, maxNewTokens: 10);
        h.Engine.Step();
        h.Engine.Step();

        var (r2, _) = h.Submit(promptLength: 5, maxNewTokens: 10);
        h.Engine.Step();

        var joined = h.Runner.LastPlan;
        Assert.Equal([new ChunkRecord(r2, 1, 0, 5, true)], joined.Prefills);
        Assert.Equal([r1], joined.Decodes.Select(d => d.RequestId));
        h.Engine.Step();
        Assert.Equal([r1, r2], h.Runner.LastPlan.Decodes.Select(d => d.RequestId));
        Assert.Equal(4, s1.Tokens.Count);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Finished_sequence_leaves_immediately_and_its_slot_is_reused_next_step()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2));
        var (r1, s1) = h.Submit(promptLength: 3, maxNewTokens: 2);
        var (r2, _) = h.Submit(promptLength: 3, maxNewTokens: 8);
        var (r3, _) = h.Submit(promptLength: 3, maxNewTokens: 8);
        h.Engine.Step();

        h.Engine.Step(); // r1's second token: it finishes in this step's update.
        Assert.Equal(FinishReason.Length, s1.Final.Reason);
        Assert.Equal([(1L, 0)], h.Runner.Releases);
        Assert.Equal(1, h.Engine.GetStats().SlotsInUse);

        h.Engine.Step();
        var next = h.Runner.LastPlan;
        Assert.False(next.Contains(r1));
        Assert.Equal([new ChunkRecord(r3, 0, 0, 3, true)], next.Prefills);
        Assert.Equal([r2], next.Decodes.Select(d => d.RequestId));
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Every_running_sequence_gets_exactly_one_token_per_step()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var sinks = Enumerable.Range(0, 4).Select(_ => h.Submit(promptLength: 3, maxNewTokens: 20).Sink).ToList();

        for (var step = 1; step <= 6; step++)
        {
            h.Engine.Step();
            Assert.All(sinks, s => Assert.Equal(step, s.Tokens.Count));
        }
        Assert.Equal(4, h.Runner.LastPlan.Decodes.Count);
    }

    [Fact]
    public void Batching_is_invisible_a_requests_tokens_do_not_depend_on_its_neighbours()
    {
        var prompt = Enumerable.Range(500, 7).ToArray();
        using var alone = new EngineHarness(EngineHarness.Small());
        var aloneSink = new RecordingSink();
        alone.Engine.Submit(EngineHarness.Request(prompt, 12), aloneSink);
        alone.RunToIdle();

        using var crowded = new EngineHarness(EngineHarness.Small(maxTokensPerStep: 8));
        crowded.Submit(promptLength: 20, maxNewTokens: 5);
        crowded.Submit(promptLength: 3, maxNewTokens: 9);
        crowded.Engine.Step();
        var crowdedSink = new RecordingSink();
        crowded.Engine.Submit(EngineHarness.Request(prompt, 12), crowdedSink);
        crowded.Submit(promptLength: 11, maxNewTokens: 4);
        crowded.RunToIdle();

        Assert.Equal(aloneSink.Tokens, crowdedSink.Tokens);
        Assert.Equal(12, crowdedSink.Tokens.Count);
        crowded.AssertRunnerSawNoViolations();
    }
}
