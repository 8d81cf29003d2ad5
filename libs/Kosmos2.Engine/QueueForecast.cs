namespace Kosmos2.Engine;

/// <summary>
/// When will each waiting request get a KV slot? Played forward on the loop thread from what this engine measured: the
/// running sequences and those queued ahead each hold their slot for their expected remaining steps (their prompt's
/// chunks, then the tokens a finished request here has generated on average, never past their own limit), one step
/// taking the average step time. With <see cref="EngineOptions.MaxQueueWait"/> set, a request forecast to wait past the
/// bound is refused at once rather than after waiting it out: the client hears "full" in one step, not in the bound,
/// and the request never takes a slot so late that its first token comes long after the bound.
/// </summary>
internal sealed class QueueForecast
{
    /// <summary>Weight of the newest observation in the running averages: about the last 10 steps or requests count.</summary>
    private const double Smoothing = 0.2;

    private double _stepSeconds = double.NaN;
    private double _generatedTokens = double.NaN;

    /// <summary>The average step time so far; NaN before the first step.</summary>
    public double StepSeconds => _stepSeconds;

    public void StepCompleted(TimeSpan duration) => _stepSeconds = Average(_stepSeconds, duration.TotalSeconds);

    /// <summary>A request ended by itself (eos, stop sequence or its token limit) after <paramref name="generated"/> tokens.</summary>
    public void SequenceCompleted(int generated) => _generatedTokens = Average(_generatedTokens, generated);

    /// <summary>
    /// Seconds until each of <paramref name="waiting"/> (in queue order) gets a slot, given <paramref name="freeSlots"/> free
    /// now and <paramref name="running"/> holding the rest; null before any step was measured. A waiting request that
    /// <paramref name="skip"/> says will leave the queue (refused) takes no slot in the forecast of those behind it.
    /// </summary>
    public double[]? Waits(IReadOnlyList<Sequence> running, IReadOnlyList<Sequence> waiting, int freeSlots, int tokensPerStep,
        Func<Sequence, double, bool> skip)
    {
        if (double.IsNaN(_stepSeconds) || waiting.Count == 0)
        {
            return null;
        }
        // Each slot's release, in steps from now: a min-heap, so the head of the queue takes the first slot to free.
        var releases = new PriorityQueue<double, double>();
        for (var i = 0; i < Math.Min(freeSlots, waiting.Count); i++)
        {
            releases.Enqueue(0, 0);
        }
        foreach (var sequence in running)
        {
            var steps = RemainingSteps(sequence, tokensPerStep);
            releases.Enqueue(steps, steps);
        }
        var waits = new double[waiting.Count];
        for (var i = 0; i < waiting.Count; i++)
        {
            if (!releases.TryPeek(out var free, out _))
            {
                waits[i] = double.PositiveInfinity; // no slot at all (cannot happen with MaxRunning ≥ 1)
                continue;
            }
            waits[i] = free * _stepSeconds;
            if (skip(waiting[i], waits[i]))
            {
                continue;
            }
            releases.Dequeue();
            var until = free + RemainingSteps(waiting[i], tokensPerStep);
            releases.Enqueue(until, until);
        }
        return waits;
    }

    /// <summary>Steps until <paramref name="sequence"/> ends: its prompt chunks left (the last one yields a token), then its expected tokens left.</summary>
    private double RemainingSteps(Sequence sequence, int tokensPerStep)
    {
        var promptLeft = sequence.PromptLength - sequence.PrefilledTokens;
        var chunks = (promptLeft + tokensPerStep - 1) / tokensPerStep;
        var generated = sequence.Generated.Count;
        var limit = sequence.Request.Stopping.MaxNewTokens - generated;
        var expected = double.IsNaN(_generatedTokens) ? limit : Math.Clamp(_generatedTokens - generated, 1, Math.Max(1, limit));
        return chunks > 0 ? chunks + expected - 1 : expected;
    }

    private static double Average(double average, double value) => double.IsNaN(average) ? value : average + Smoothing * (value - average);
}
