namespace Kosmos2.Engine.Tests;

public sealed class StopConditionTests
{
    private const int Eos = 2;

    [Fact]
    public void Eos_stops_the_sequence_and_is_the_last_generated_token()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 10);
        h.Runner.Script(id, 5, 6, Eos, 7);

        h.RunToIdle();

        Assert.Equal([5, 6, Eos], sink.Tokens);
        Assert.Equal(FinishReason.Eos, sink.Final.Reason);
        Assert.Equal([5, 6, Eos], sink.Final.GeneratedTokenIds);
        Assert.Equal(3, sink.Final.GeneratedTokens);
        Assert.Equal(3, sink.Final.PromptTokens);
    }

    [Fact]
    public void Eos_as_the_first_token_ends_the_request_in_its_prefill_step()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 10);
        h.Runner.Script(id, Eos);

        h.Engine.Step();

        Assert.Equal(FinishReason.Eos, sink.Final.Reason);
        Assert.Equal([(0L, 0)], h.Runner.Releases);
        Assert.False(h.Engine.Step());
    }

    [Fact]
    public void Ignore_eos_keeps_generating_to_max_new_tokens()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 5, ignoreEos: true);
        h.Runner.Script(id, Eos, 9, Eos, Eos, 9, 9);

        h.RunToIdle();

        Assert.Equal([Eos, 9, Eos, Eos, 9], sink.Tokens);
        Assert.Equal(FinishReason.Length, sink.Final.Reason);
    }

    [Fact]
    public void Max_new_tokens_stops_after_exactly_that_many_tokens()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (_, sink) = h.Submit(promptLength: 3, maxNewTokens: 7);

        h.RunToIdle();

        Assert.Equal(7, sink.Tokens.Count);
        Assert.Equal(FinishReason.Length, sink.Final.Reason);
    }

    [Fact]
    public void Eos_on_the_last_allowed_token_reports_eos_not_length()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 2);
        h.Runner.Script(id, 4, Eos);

        h.RunToIdle();

        Assert.Equal(FinishReason.Eos, sink.Final.Reason);
    }

    [Fact]
    public void Multi_token_stop_sequence_stops_only_on_a_full_match_at_the_end()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (id, sink) = h.Submit(promptLength: 3, maxNewTokens: 20, ignoreEos: false, [7, 8, 9], [50, 51]);
        h.Runner.Script(id, 7, 8, 1, 7, 8, 9, 4, 4);

        h.RunToIdle();

        Assert.Equal([7, 8, 1, 7, 8, 9], sink.Tokens);
        Assert.Equal(FinishReason.StopSequence, sink.Final.Reason);
    }

    [Fact]
    public void Stop_sequence_is_matched_against_generated_ids_not_the_prompt()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var sink = new RecordingSink();
        var result = h.Engine.Submit(EngineHarness.Request([40, 41, 7], 3, false, [7, 8]), sink);
        h.Runner.Script(result.RequestId, 8, 5, 6);

        h.RunToIdle();

        Assert.Equal(FinishReason.Length, sink.Final.Reason);
    }
}
