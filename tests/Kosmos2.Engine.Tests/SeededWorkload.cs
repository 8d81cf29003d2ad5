using System.Globalization;
using System.Text;

namespace Kosmos2.Engine.Tests;

/// <summary>One submitted request of a workload and what became of it.</summary>
public sealed record WorkloadRequest(SubmitResult Submit, RecordingSink Sink, int MaxNewTokens);

/// <summary>What a workload run produced: the plans, every request and the final counters.</summary>
public sealed record WorkloadOutcome(string Transcript, string Results, IReadOnlyList<WorkloadRequest> Requests, EngineStats Stats, IReadOnlyList<string> RunnerViolations, int SlotsHeld);

/// <summary>
/// A random but seeded workload driven on one thread: arrivals of random size, aborts of random ids (running,
/// waiting, finished or unknown), eos and stop tokens, rejections of both kinds, queue waits past the bound, and
/// injected runner failures.
/// </summary>
public static class SeededWorkload
{
    private const int StopToken = 17;

    public static WorkloadOutcome Run(int seed, int steps = 400)
    {
        // A queue wait bound of about nine steps (each ~11 ms of the fake clock), so some requests time out in the queue.
        var options = EngineHarness.Small(maxRunning: 6, maxWaiting: 12, maxSequenceTokens: 48, maxTokensPerStep: 16) with { MaxQueueWait = TimeSpan.FromMilliseconds(100) };
        var clock = new ManualTimeProvider();
        using var h = new EngineHarness(options, clock);
        var random = new Random(seed);
        h.Runner.TokenFunction = (prompt, index) =>
        {
            var token = FakeModelRunner.HashToken(prompt, index);
            return token % 13 == 0 ? 2 : token % 17 == 0 ? StopToken : token;
        };
        h.Runner.OnExecute = _ =>
        {
            if (random.Next(60) == 0)
            {
                throw new InvalidOperationException("injected failure");
            }
        };
        var requests = new List<WorkloadRequest>();
        var nextPromptToken = 1000;

        for (var step = 0; step < steps; step++)
        {
            // Now and then a burst larger than the queue, between two steps: the queue-wait forecast refuses a request
            // only at a step, so a full queue (QueueFull) comes from arrivals faster than steps.
            var arrivals = random.Next(40) == 0 ? options.MaxWaiting + 2 : random.Next(3);
            for (var i = 0; i < arrivals; i++)
            {
                var promptLength = random.Next(1, 41);
                var prompt = Enumerable.Range(nextPromptToken, promptLength).ToArray();
                nextPromptToken += promptLength;
                var maxNew = random.Next(1, 21);
                var stops = random.Next(4) == 0 ? new[] { new[] { StopToken } } : null;
                var request = new GenerationRequest(prompt, new StoppingParameters(maxNew, stops, IgnoreEos: random.Next(5) == 0));
                var sink = new RecordingSink();
                requests.Add(new WorkloadRequest(h.Engine.Submit(request, sink), sink, maxNew));
            }
            if (random.Next(4) == 0)
            {
                h.Engine.Abort(random.Next(1, requests.Count + 3));
            }
            clock.Advance(TimeSpan.FromMilliseconds(random.Next(3)));
            h.Engine.Step();
        }
        // It ends as a pod does on SIGTERM: the queue left is refused, the batch runs to its end.
        h.Engine.StopAdmitting();
        h.RunToIdle();

        var results = new StringBuilder();
        foreach (var r in requests)
        {
            results.AppendLine(r.Submit.IsAccepted
                ? string.Create(CultureInfo.InvariantCulture, $"{r.Submit.RequestId} {r.Sink.Final.Reason} {r.Sink.Final.Timings} {string.Join(',', r.Sink.Tokens)}")
                : $"rejected {r.Submit.Rejection}");
        }
        return new WorkloadOutcome(h.Runner.Transcript(), results.ToString(), requests, h.Engine.GetStats(), h.Runner.Violations, h.Runner.SlotsHeld);
    }
}
