using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Kosmos2.Engine;

/// <summary>
/// The continuous-batching engine: one loop of drain intake → schedule → <see cref="IModelRunner.Execute"/> → update
/// → publish. <see cref="Submit"/>, <see cref="Abort"/> and <see cref="GetStats"/> are safe from any thread;
/// <see cref="Step"/>, <see cref="RunLoop"/> and <see cref="Shutdown"/> run on the one loop thread that owns the runner.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    private readonly EngineOptions _options;
    private readonly IModelRunner _runner;
    private readonly TimeProvider _time;
    private readonly RequestIntake _intake = new();
    private readonly Scheduler _scheduler;
    private readonly Dictionary<long, Sequence> _live = [];
    private readonly EngineCounters _counters;
    private readonly QueueForecast _forecast = new();
    private int _loopThreadId;
    private long _stepIndex;
    private bool _shutDown;

    /// <summary>Creates an engine; nothing runs until the loop thread calls <see cref="Step"/> or <see cref="RunLoop"/>.</summary>
    /// <param name="options">Limits; validated here.</param>
    /// <param name="runner">The model runner, used only from the loop thread.</param>
    /// <param name="timeProvider">Clock for timings and health; <see cref="TimeProvider.System"/> when null.</param>
    public GenerationEngine(EngineOptions options, IModelRunner runner, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(runner);
        options.Validate();
        _options = options;
        _runner = runner;
        _time = timeProvider ?? TimeProvider.System;
        _scheduler = new Scheduler(options);
        _counters = new EngineCounters(_time);
    }

    /// <summary>The limits this engine runs with.</summary>
    public EngineOptions Options => _options;

    /// <summary>
    /// Queues a request, or refuses it at once with a reason (nothing is generated for a refused request and its
    /// sink is never called). An accepted request joins the batch at the next step with a free slot, and its sink
    /// gets its tokens, then exactly one <see cref="IRequestSink.OnFinished"/>. Any thread.
    /// </summary>
    public SubmitResult Submit(GenerationRequest request, IRequestSink sink)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(sink);
        if (request.Problem(_options.MaxSequenceTokens) is { } invalid)
        {
            return Reject(invalid.Reason, invalid.Message);
        }

        var arrival = _time.GetTimestamp();
        var refusal = _intake.TryAdd(id => new Sequence(id, request, sink, arrival), _options.MaxWaiting, out var sequence);
        return refusal switch
        {
            null => Accepted(sequence!.Id),
            RejectionReason.QueueFull => Reject(
                RejectionReason.QueueFull,
                $"The decoder's waiting queue is full ({_options.MaxWaiting} requests); retry later or on another worker."),
            _ => Reject(RejectionReason.ShuttingDown, "The decoder engine is shutting down; retry on another worker."),
        };
    }

    /// <summary>
    /// Asks the loop to end a request (client cancel or deadline): it leaves the batch and frees its slot before
    /// the next step, and its sink gets one <see cref="FinishReason.Aborted"/> result unless it had already
    /// finished. Idempotent; unknown ids are ignored. Any thread.
    /// </summary>
    public void Abort(long requestId) => _intake.Abort(requestId);

    /// <summary>
    /// Starts a drain: new submits are refused (<see cref="RejectionReason.ShuttingDown"/>), and at the next step every
    /// request still waiting for a slot ends as <see cref="FinishReason.Refused"/> (nothing generated, safe to send
    /// elsewhere), while running requests go on to their end. Idempotent. Any thread.
    /// </summary>
    public void StopAdmitting() => _intake.StopAdmitting();

    /// <summary>
    /// Runs one step: drain submits and aborts, schedule, execute, append sampled tokens, end finished requests
    /// and publish events. Returns false when there was nothing to run. Loop thread only.
    /// </summary>
    public bool Step()
    {
        EnsureLoopThread();
        DrainIntake();
        if (!_intake.IsAdmitting)
        {
            RefuseWaiting();
        }
        var started = _time.GetTimestamp();
        if (_options.MaxQueueWait > TimeSpan.Zero)
        {
            RefuseOverdue(started);
            RefuseForecastOverdue(started);
        }
        if (_scheduler.Schedule(_stepIndex, started) is not { } step)
        {
            PublishGauges();
            _counters.Progress(started);
            return false;
        }
        _stepIndex++;
        _intake.LeftWaiting(step.Admitted);

        var plan = step.Plan;
        StepOutput output;
        try
        {
            output = _runner.Execute(plan);
            output.EnsureMatches(plan);
        }
        catch (Exception ex)
        {
            _counters.RunnerFailed();
            FailStep(step, $"The model runner failed: {ex.GetType().Name}: {ex.Message}");
            PublishGauges(); // no progress mark: a runner that always throws must show up in health
            return true;
        }

        var finished = _time.GetTimestamp();
        Update(step, output, finished);
        var duration = _time.GetElapsedTime(started, finished);
        _forecast.StepCompleted(duration);
        _counters.StepCompleted(duration, plan.TokenCount, plan.Prefills.Count + plan.Decodes.Count);
        PublishGauges();
        _counters.Progress(finished);
        return true;
    }

    /// <summary>
    /// Runs steps on the calling thread until <paramref name="cancellationToken"/> is cancelled, blocking without
    /// spinning while there is no work and waking on the next submit. On exit it calls <see cref="Shutdown"/>.
    /// </summary>
    public void RunLoop(CancellationToken cancellationToken)
    {
        EnsureLoopThread();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (!_scheduler.HasWork && _intake.IsEmpty)
                {
                    _counters.Progress(_time.GetTimestamp());
                    _intake.WaitForWork(_options.IdleHeartbeat, cancellationToken);
                    continue;
                }
                Step();
            }
        }
        finally
        {
            Shutdown();
        }
    }

    /// <summary>
    /// Refuses new submits (<see cref="RejectionReason.ShuttingDown"/>) and ends every accepted request still
    /// in the engine as <see cref="FinishReason.Aborted"/>, so none is lost. Idempotent. Loop thread only.
    /// </summary>
    public void Shutdown()
    {
        EnsureLoopThread();
        if (_shutDown)
        {
            return;
        }
        _shutDown = true;
        _intake.Close();
        DrainIntake();
        foreach (var sequence in _scheduler.All.ToList())
        {
            Finish(sequence, FinishReason.Aborted, _time.GetTimestamp());
        }
        PublishGauges();
    }

    /// <summary>The engine's load and counters now. Any thread.</summary>
    public EngineStats GetStats() => _counters.Snapshot(_intake.WaitingCount, _options.MaxRunning);

    /// <summary>Releases the wake-up event; call after the loop has ended.</summary>
    public void Dispose() => _intake.Dispose();

    private SubmitResult Accepted(long requestId)
    {
        _counters.Accepted();
        return SubmitResult.Accepted(requestId);
    }

    private SubmitResult Reject(RejectionReason reason, string message)
    {
        _counters.Rejected(reason);
        return SubmitResult.Rejected(reason, message);
    }

    /// <summary>Applies one batch of submits and aborts, in the order they arrived.</summary>
    private void DrainIntake()
    {
        foreach (var item in _intake.Drain())
        {
            if (item.Submitted is { } sequence)
            {
                _live.Add(sequence.Id, sequence);
                _scheduler.Enqueue(sequence);
            }
            else if (_live.TryGetValue(item.AbortId, out var aborted))
            {
                Finish(aborted, FinishReason.Aborted, _time.GetTimestamp());
            }
        }
    }

    /// <summary>Ends every request that has waited for a slot longer than <see cref="EngineOptions.MaxQueueWait"/>.</summary>
    private void RefuseOverdue(long now)
    {
        foreach (var sequence in _scheduler.All.Where(s => s.Status == RequestStatus.Waiting && _time.GetElapsedTime(s.ArrivalTimestamp, now) > _options.MaxQueueWait).ToList())
        {
            Finish(sequence, FinishReason.QueueTimedOut, now);
        }
    }

    /// <summary>
    /// Ends every waiting request that <see cref="QueueForecast"/> says would get its slot past
    /// <see cref="EngineOptions.MaxQueueWait"/> (counting the time it has waited), with the forecast as its retry hint.
    /// </summary>
    private void RefuseForecastOverdue(long now)
    {
        List<(Sequence Sequence, double Wait)>? refused = null;
        var bound = _options.MaxQueueWait.TotalSeconds;
        _forecast.Waits(_scheduler.Running, _scheduler.Waiting, _scheduler.AdmittableSlots, _options.MaxTokensPerStep, (sequence, wait) =>
        {
            if (_time.GetElapsedTime(sequence.ArrivalTimestamp, now).TotalSeconds + wait <= bound)
            {
                return false;
            }
            (refused ??= []).Add((sequence, wait));
            return true;
        });
        foreach (var (sequence, wait) in refused ?? [])
        {
            Finish(sequence, FinishReason.QueueTimedOut, now, forecastWait: TimeSpan.FromSeconds(wait));
        }
    }

    /// <summary>Ends every request still waiting for a slot as <see cref="FinishReason.Refused"/> (drain).</summary>
    private void RefuseWaiting()
    {
        var now = _time.GetTimestamp();
        foreach (var sequence in _scheduler.All.Where(s => s.Status == RequestStatus.Waiting).ToList())
        {
            Finish(sequence, FinishReason.Refused, now);
        }
    }

    private void Update(ScheduledStep step, StepOutput output, long now)
    {
        for (var i = 0; i < step.Decodes.Count; i++)
        {
            AppendToken(step.Decodes[i], output.DecodeTokenIds[i], output.DecodeLogprobs?[i], now);
        }
        for (var i = 0; i < step.Prefills.Count; i++)
        {
            var chunk = step.Plan.Prefills[i];
            var sequence = step.Prefills[i];
            sequence.PrefilledTokens = chunk.End;
            if (chunk.IsLast)
            {
                AppendToken(sequence, output.PrefillTokenIds[i], output.PrefillLogprobs?[i], now);
            }
        }
    }

    private void AppendToken(Sequence sequence, int tokenId, TokenLogprobs? logprobs, long now)
    {
        sequence.Append(tokenId, now);
        _counters.TokenGenerated();
        try
        {
            sequence.Sink.OnToken(tokenId, logprobs);
        }
        catch (Exception)
        {
            _counters.SinkFaulted();
        }
        if (StopChecker.Check(sequence.Generated, sequence.Request.Stopping, _options.EosTokenId) is { } reason)
        {
            Finish(sequence, reason, now);
        }
    }

    /// <summary>Ends every request of the failed step; their KV state is unknown, so their slots are released.</summary>
    private void FailStep(ScheduledStep step, string error)
    {
        var now = _time.GetTimestamp();
        foreach (var sequence in step.Decodes.Concat(step.Prefills))
        {
            Finish(sequence, FinishReason.Error, now, error);
        }
    }

    /// <summary>Takes a request out at once (its slot is free for the next step) and publishes its one final event.</summary>
    private void Finish(Sequence sequence, FinishReason reason, long now, string? error = null, TimeSpan? forecastWait = null)
    {
        if (sequence.Status == RequestStatus.Finished)
        {
            return;
        }
        var wasWaiting = sequence.Status == RequestStatus.Waiting;
        var reused = sequence.ReusedTokens;
        var slot = _scheduler.Remove(sequence, keepRows: reason != FinishReason.Error);
        sequence.Status = RequestStatus.Finished;
        _live.Remove(sequence.Id);
        if (wasWaiting)
        {
            _intake.LeftWaiting();
        }
        if (slot >= 0)
        {
            ReleaseSlot(slot);
        }

        _counters.Finished(reason);
        if (reason is FinishReason.Eos or FinishReason.Length or FinishReason.StopSequence)
        {
            _forecast.SequenceCompleted(sequence.Generated.Count);
        }
        var result = new GenerationResult(
            sequence.Id, reason, sequence.PromptLength, sequence.Generated, sequence.Timings(_time, now), error)
        {
            CachedPromptTokens = reused,
            ForecastQueueWait = forecastWait,
        };
        try
        {
            sequence.Sink.OnFinished(result);
        }
        catch (Exception)
        {
            _counters.SinkFaulted();
        }
    }

    private void ReleaseSlot(int slot)
    {
        try
        {
            _runner.Release(slot);
        }
        catch (Exception)
        {
            // The slot is logically free either way; the runner resets it at the next chunk with Start = 0.
            _counters.RunnerFailed();
        }
    }

    private void PublishGauges()
    {
        _counters.Gauges(_scheduler.RunningCount, _scheduler.SlotsInUse);
        _counters.Prefixes(_scheduler.TakePrefixEvents(), _scheduler.CachedSlots, _scheduler.CachedTokens);
    }

    /// <summary>The runner's tensors are bound to one thread (DESIGN.md), so loop calls from a second thread are a bug.</summary>
    private void EnsureLoopThread()
    {
        var current = Environment.CurrentManagedThreadId;
        var owner = Interlocked.CompareExchange(ref _loopThreadId, current, 0);
        if (owner != 0 && owner != current)
        {
            ThrowWrongThread(owner, current);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowWrongThread(int owner, int current) =>
        throw new InvalidOperationException(
            $"GenerationEngine's loop runs on thread {owner}; Step/RunLoop/Shutdown were called from thread {current}. " +
            "Submit and Abort are the calls other threads may make.");
}
