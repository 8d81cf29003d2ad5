namespace Kosmos2.Engine.Tests;

/// <summary>An engine over a fake runner, with helpers to submit and step; single-threaded unless a test says so.</summary>
public sealed class EngineHarness : IDisposable
{
    private int _nextPromptToken = 100;

    public EngineHarness(EngineOptions options, ManualTimeProvider? clock = null)
    {
        Options = options;
        Runner = new FakeModelRunner(options) { Clock = clock };
        Engine = new GenerationEngine(options, Runner, clock);
    }

    public EngineOptions Options { get; }

    public FakeModelRunner Runner { get; }

    public GenerationEngine Engine { get; }

    public static EngineOptions Small(int maxRunning = 4, int maxWaiting = 16, int maxSequenceTokens = 64, int maxTokensPerStep = 32) =>
        new()
        {
            MaxRunning = maxRunning,
            MaxWaiting = maxWaiting,
            MaxSequenceTokens = maxSequenceTokens,
            MaxTokensPerStep = maxTokensPerStep,
            EosTokenId = 2, // the token FakeModelRunner ends with
        };

    /// <summary>A prompt of distinct tokens (so hash tokens differ per request).</summary>
    public int[] Prompt(int length)
    {
        var prompt = Enumerable.Range(_nextPromptToken, length).ToArray();
        _nextPromptToken += length;
        return prompt;
    }

    public static GenerationRequest Request(int[] prompt, int maxNewTokens, bool ignoreEos = false, params int[][] stopSequences) =>
        new(prompt, new StoppingParameters(maxNewTokens, stopSequences.Length == 0 ? null : stopSequences, ignoreEos));

    /// <summary>Submits a request that must be accepted; returns its id and sink.</summary>
    public (long Id, RecordingSink Sink) Submit(int promptLength, int maxNewTokens, bool ignoreEos = false, params int[][] stopSequences)
    {
        var sink = new RecordingSink();
        var result = Engine.Submit(Request(Prompt(promptLength), maxNewTokens, ignoreEos, stopSequences), sink);
        Assert.True(result.IsAccepted, result.Message);
        return (result.RequestId, sink);
    }

    /// <summary>Steps until the engine has nothing left; fails if that takes more than <paramref name="maxSteps"/>.</summary>
    public int RunToIdle(int maxSteps = 10_000)
    {
        var steps = 0;
        while (Engine.Step())
        {
            Assert.True(++steps <= maxSteps, "the engine did not become idle");
        }
        return steps;
    }

    public void AssertRunnerSawNoViolations() => Assert.Empty(Runner.Violations);

    public void Dispose() => Engine.Dispose();
}
