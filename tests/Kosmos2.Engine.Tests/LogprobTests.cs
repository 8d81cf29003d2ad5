namespace Kosmos2.Engine.Tests;

/// <summary>Log-probabilities are the runner's: the engine hands each one to the sink with its token, or fails a plan that misaligns them.</summary>
public sealed class LogprobTests
{
    [Fact]
    public void Each_token_reaches_the_sink_with_the_log_probabilities_the_runner_gave_it()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var sink = new LogprobSink();
        h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 4), sink);
        h.Runner.RewriteOutput = (plan, output) => output with
        {
            PrefillLogprobs = [.. output.PrefillTokenIds.Select(t => t < 0 ? null : Logprobs(t))],
            DecodeLogprobs = [.. output.DecodeTokenIds.Select(Logprobs)],
        };

        h.RunToIdle();

        Assert.Equal(4, sink.Received.Count);
        Assert.All(sink.Received, r =>
        {
            Assert.Equal(-r.Token / 1000f, r.Logprobs!.Logprob);
            Assert.Equal([r.Token], r.Logprobs.TopTokenIds);
        });
    }

    [Fact]
    public void Log_probabilities_that_do_not_match_the_plan_count_as_a_runner_failure()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        var (_, sink) = h.Submit(promptLength: 3, maxNewTokens: 5);
        h.Runner.RewriteOutput = (_, output) => output with { PrefillLogprobs = [] };

        h.Engine.Step();

        Assert.Equal(FinishReason.Error, sink.Final.Reason);
        Assert.Contains("does not match", sink.Final.Error, StringComparison.Ordinal);
    }

    private static TokenLogprobs Logprobs(int token) => new(-token / 1000f, [token], [-token / 1000f]);

    private sealed class LogprobSink : IRequestSink
    {
        public List<(int Token, TokenLogprobs? Logprobs)> Received { get; } = [];

        public void OnToken(int tokenId) => throw new InvalidOperationException("the engine calls the overload with log-probabilities");

        public void OnToken(int tokenId, TokenLogprobs? logprobs) => Received.Add((tokenId, logprobs));

        public void OnFinished(GenerationResult result)
        {
        }
    }
}
