namespace Kosmos2.Engine.Tests;

public sealed class StressTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(2024)]
    public void Seeded_random_workload_answers_every_accepted_request_exactly_once(int seed)
    {
        var outcome = SeededWorkload.Run(seed);

        Assert.Empty(outcome.RunnerViolations);
        var accepted = outcome.Requests.Where(r => r.Submit.IsAccepted).ToList();
        foreach (var r in accepted)
        {
            var final = r.Sink.Final;
            Assert.Equal(0, r.Sink.ContractViolations);
            Assert.Equal(r.Submit.RequestId, final.RequestId);
            Assert.Equal(r.Sink.Tokens, final.GeneratedTokenIds);
            Assert.True(final.GeneratedTokens <= r.MaxNewTokens);
            if (final.Reason == FinishReason.Length)
            {
                Assert.Equal(r.MaxNewTokens, final.GeneratedTokens);
            }
        }
        Assert.All(outcome.Requests.Where(r => !r.Submit.IsAccepted), r => Assert.Equal(0, r.Sink.EventCount));

        // The workload covers every outcome, or it proves little.
        var reasons = accepted.Select(r => r.Sink.Final.Reason).ToHashSet();
        Assert.Equal(Enum.GetValues<FinishReason>().ToHashSet(), reasons);
        var rejections = outcome.Requests.Where(r => !r.Submit.IsAccepted).Select(r => r.Submit.Rejection).ToHashSet();
        Assert.Contains(RejectionReason.QueueFull, rejections);
        Assert.Contains(RejectionReason.TooLong, rejections);

        var stats = outcome.Stats;
        Assert.Equal(accepted.Count, stats.Accepted);
        Assert.Equal(stats.Accepted, stats.Completed + stats.Aborted + stats.Failed);
        Assert.Equal(outcome.Requests.Count - accepted.Count, stats.Rejected);
        Assert.Equal((0, 0, 0), (stats.Running, stats.Waiting, stats.SlotsInUse));
        Assert.Equal(0, outcome.SlotsHeld);
    }

    [Fact]
    public async Task Concurrent_submits_and_aborts_while_the_loop_runs_lose_nothing()
    {
        var options = EngineHarness.Small(maxRunning: 8, maxWaiting: 16, maxSequenceTokens: 64, maxTokensPerStep: 24);
        var runner = new FakeModelRunner(options);
        using var engine = new GenerationEngine(options, runner);
        using var stop = new CancellationTokenSource();
        var loop = new Thread(() => engine.RunLoop(stop.Token)) { IsBackground = true };
        loop.Start();

        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            var random = new Random(p);
            var mine = new List<(SubmitResult Result, RecordingSink Sink)>();
            for (var i = 0; i < 150; i++)
            {
                var prompt = Enumerable.Range((p * 10_000) + (i * 40), random.Next(1, 30)).ToArray();
                var sink = new RecordingSink();
                mine.Add((engine.Submit(new GenerationRequest(prompt, new StoppingParameters(random.Next(1, 30))), sink), sink));
                if (random.Next(3) == 0 && mine[random.Next(mine.Count)] is { Result.IsAccepted: true } victim)
                {
                    engine.Abort(victim.Result.RequestId);
                }
                Thread.Yield();
            }
            return mine;
        })).ToArray();
        var all = (await Task.WhenAll(producers)).SelectMany(m => m).ToList();
        var accepted = all.Where(r => r.Result.IsAccepted).ToList();

        await Poll.UntilAsync(() => accepted.All(r => r.Sink.IsFinished), TimeSpan.FromSeconds(30), "every accepted request to finish");
        await stop.CancelAsync();
        Assert.True(loop.Join(TimeSpan.FromSeconds(10)));

        Assert.NotEmpty(accepted);
        Assert.All(accepted, r => Assert.Single(r.Sink.Results));
        Assert.All(accepted, r => Assert.Equal(0, r.Sink.ContractViolations));
        Assert.All(all.Where(r => !r.Result.IsAccepted), r => Assert.Equal(0, r.Sink.EventCount));
        Assert.Equal(accepted.Count, accepted.Select(r => r.Result.RequestId).Distinct().Count());
        Assert.Empty(runner.Violations);
        Assert.Equal(0, runner.SlotsHeld);
    }
}
