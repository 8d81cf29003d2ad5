namespace Kosmos2.Engine.Tests;

public sealed class AdmissionTests
{
    [Fact]
    public void Admission_stops_at_max_running_and_the_next_request_takes_the_first_freed_slot()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 2));
        var (r1, _) = h.Submit(promptLength: 4, maxNewTokens: 2);
        var (r2, _) = h.Submit(promptLength: 4, maxNewTokens: 5);
        var (r3, s3) = h.Submit(promptLength: 4, maxNewTokens: 1);

        h.Engine.Step();
        Assert.Equal([new ChunkRecord(r1, 0, 0, 4, true), new ChunkRecord(r2, 1, 0, 4, true)], h.Runner.LastPlan.Prefills);
        Assert.Equal(1, h.Engine.GetStats().Waiting);
        Assert.Equal(2, h.Engine.GetStats().SlotsInUse);

        h.Engine.Step(); // r1 reaches 2 tokens and leaves; r3 still waits for a slot.
        Assert.False(h.Runner.LastPlan.Contains(r3));
        Assert.Contains((1L, 0), h.Runner.Releases);

        h.Engine.Step();
        Assert.Equal([new ChunkRecord(r3, 0, 0, 4, true)], h.Runner.LastPlan.Prefills);
        Assert.Equal([r2], h.Runner.LastPlan.Decodes.Select(d => d.RequestId));
        Assert.Equal(FinishReason.Length, s3.Final.Reason);

        h.RunToIdle();
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Request_that_can_never_fit_a_kv_slot_is_rejected_with_a_reason_and_an_exact_fit_is_accepted()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxSequenceTokens: 16));
        var sink = new RecordingSink();

        var tooLong = h.Engine.Submit(EngineHarness.Request(h.Prompt(10), maxNewTokens: 7), sink);
        var exact = h.Engine.Submit(EngineHarness.Request(h.Prompt(10), maxNewTokens: 6), new RecordingSink());

        Assert.False(tooLong.IsAccepted);
        Assert.Equal(RejectionReason.TooLong, tooLong.Rejection);
        Assert.Contains("17", tooLong.Message, StringComparison.Ordinal);
        Assert.Contains("16-token", tooLong.Message, StringComparison.Ordinal);
        Assert.True(exact.IsAccepted);
        h.RunToIdle();
        Assert.Equal(0, sink.EventCount);
        Assert.Equal(1, h.Engine.GetStats().Rejected);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Full_waiting_queue_rejects_at_submit_before_any_token_and_accepts_again_once_drained()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxRunning: 1, maxWaiting: 2));
        h.Submit(promptLength: 3, maxNewTokens: 3);
        h.Submit(promptLength: 3, maxNewTokens: 3);
        var refusedSink = new RecordingSink();

        var refused = h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 3), refusedSink);

        Assert.Equal(RejectionReason.QueueFull, refused.Rejection);
        Assert.Contains("queue is full", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, h.Engine.GetStats().RejectedQueueFull);

        h.Engine.Step(); // the first is admitted: one place frees up.
        Assert.Equal(1, h.Engine.GetStats().Waiting);
        h.Submit(promptLength: 3, maxNewTokens: 3);
        h.RunToIdle();
        Assert.Equal(0, refusedSink.EventCount);
        Assert.Equal(3, h.Engine.GetStats().Completed);
    }

    [Fact]
    public void Zero_max_waiting_refuses_everything()
    {
        using var h = new EngineHarness(EngineHarness.Small(maxWaiting: 0));

        var result = h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 3), new RecordingSink());

        Assert.Equal(RejectionReason.QueueFull, result.Rejection);
    }

    public static TheoryData<GenerationRequest> InvalidRequests => new()
    {
        EngineHarness.Request([], 4),
        EngineHarness.Request([5, 6], 0),
        EngineHarness.Request([5, 6], 4, false, Array.Empty<int>()),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), ImageEmbeddings: new TestImage(1), ImageOffset: 2),
        new GenerationRequest(new[] { 5, 6, 7 }, new StoppingParameters(4), ImageEmbeddings: new TestImage(3), ImageOffset: 1),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(Temperature: -1f)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(Temperature: float.NaN)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(TopP: 0f)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(TopK: -1)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(RepetitionPenalty: 0f)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(TopLogprobs: 2)),
        new GenerationRequest(new[] { 5, 6 }, new StoppingParameters(4), new SamplingParameters(ReturnLogprobs: true, TopLogprobs: SamplingParameters.MaxTopLogprobs + 1)),
    };

    /// <summary>An image of <paramref name="Rows"/> embedding rows (the engine reads nothing else).</summary>
    private sealed record TestImage(int Rows) : IImagePayload;

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public void Malformed_requests_are_rejected_as_invalid(GenerationRequest request)
    {
        using var h = new EngineHarness(EngineHarness.Small());

        var result = h.Engine.Submit(request, new RecordingSink());

        Assert.Equal(RejectionReason.Invalid, result.Rejection);
        Assert.False(string.IsNullOrWhiteSpace(result.Message));
    }

    [Fact]
    public void Submit_after_shutdown_is_rejected_as_shutting_down()
    {
        using var h = new EngineHarness(EngineHarness.Small());
        h.Engine.Shutdown();

        var result = h.Engine.Submit(EngineHarness.Request(h.Prompt(3), 3), new RecordingSink());

        Assert.Equal(RejectionReason.ShuttingDown, result.Rejection);
    }

    [Fact]
    public void Options_whose_step_budget_cannot_cover_a_full_batch_are_refused()
    {
        var options = EngineHarness.Small(maxRunning: 8, maxTokensPerStep: 7);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationEngine(options, new FakeModelRunner(options)));

        Assert.Equal(nameof(EngineOptions.MaxTokensPerStep), error.ParamName);
    }
}
