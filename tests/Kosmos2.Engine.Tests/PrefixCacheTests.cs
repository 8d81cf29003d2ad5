namespace Kosmos2.Engine.Tests;

/// <summary>
/// The prefix cache's bookkeeping (EngineOptions.PrefixCacheSlots) over the fake runner, which simulates what each KV
/// slot holds and flags any reuse of rows that do not hold the reusing prompt's prefix over its image.
/// </summary>
public sealed class PrefixCacheTests
{
    private sealed record Image(string Identity, int Rows = 4) : IImagePayload;

    private static EngineOptions Options(int cacheSlots, int maxRunning = 4, int budget = 64) =>
        EngineHarness.Small(maxRunning: maxRunning, maxSequenceTokens: 128, maxTokensPerStep: budget) with { PrefixCacheSlots = cacheSlots };

    private static GenerationRequest Request(int[] prompt, int maxNewTokens, string image = "img") =>
        new(prompt, new StoppingParameters(maxNewTokens, IgnoreEos: true), ImageEmbeddings: new Image(image), ImageOffset: 1);

    private static (long Id, RecordingSink Sink) Submit(EngineHarness h, GenerationRequest request)
    {
        var sink = new RecordingSink();
        var submitted = h.Engine.Submit(request, sink);
        Assert.True(submitted.IsAccepted, submitted.Message);
        return (submitted.RequestId, sink);
    }

    /// <summary>A chat's next turn: the previous context, its answer (all but the last token, never fed), then a question.</summary>
    private static int[] NextTurn(int[] prompt, IReadOnlyList<int> answer, params int[] question) => [.. prompt, .. answer, .. question];

    [Fact]
    public void A_turn_that_continues_a_finished_sequence_takes_over_its_slot_and_prefills_only_the_question()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4));
        var first = h.Prompt(20);
        var (_, turn1) = Submit(h, Request(first, 5));
        h.RunToIdle();
        var second = NextTurn(first, turn1.Tokens, 900, 901, 902);
        var stepsBefore = h.Runner.Plans.Count;

        var (id2, turn2) = Submit(h, Request(second, 5));
        h.RunToIdle();

        // The first turn wrote its prompt and every answer token but the last, sampled and never fed back (a chat's </s>,
        // which the gateway leaves out of the context; here a length stop, so the next turn prefills that one too).
        var reused = first.Length + turn1.Tokens.Count - 1;
        Assert.Equal(second.Length - 4, reused);
        Assert.Equal(reused, turn2.Final.CachedPromptTokens);
        var chunk = Assert.Single(h.Runner.Plans.Skip(stepsBefore).SelectMany(p => p.Prefills), c => c.RequestId == id2);
        Assert.Equal(reused, chunk.Start);
        Assert.Empty(h.Runner.Copies); // the slot was handed over with its rows
        Assert.Equal(FakeModelRunner.HashToken(second, 0), turn2.Tokens[0]);
        var stats = h.Engine.GetStats().Prefix;
        Assert.Equal((1, 1, reused), (stats.Hits, stats.Misses, stats.TokensSaved));
        Assert.Equal(1, stats.CachedSlots);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void With_the_cache_off_nothing_is_reused_and_slots_are_freed_as_before()
    {
        using var h = new EngineHarness(Options(cacheSlots: 0));
        var first = h.Prompt(20);
        var (_, turn1) = Submit(h, Request(first, 5));
        h.RunToIdle();

        var (_, turn2) = Submit(h, Request(NextTurn(first, turn1.Tokens, 900), 5));
        h.RunToIdle();

        Assert.Equal(0, turn2.Final.CachedPromptTokens);
        Assert.Equal(2, h.Runner.Plans.SelectMany(p => p.Prefills).Count(c => c.Start == 0));
        Assert.Equal(default, h.Engine.GetStats().Prefix);
        Assert.Equal(0, h.Engine.GetStats().SlotsInUse);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Another_image_never_reuses_rows()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4));
        var first = h.Prompt(20);
        var (_, turn1) = Submit(h, Request(first, 5, image: "a"));
        h.RunToIdle();

        var (_, other) = Submit(h, Request(NextTurn(first, turn1.Tokens, 900), 5, image: "b"));
        h.RunToIdle();

        Assert.Equal(0, other.Final.CachedPromptTokens);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Repeating_a_prompt_reuses_all_but_its_last_token()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4));
        var prompt = h.Prompt(20);
        var (_, cold) = Submit(h, Request(prompt, 4));
        h.RunToIdle();

        var (_, warm) = Submit(h, Request(prompt, 4));
        h.RunToIdle();

        Assert.Equal(prompt.Length - 1, warm.Final.CachedPromptTokens);
        Assert.Equal(cold.Tokens, warm.Tokens);
        Assert.Single(h.Runner.Copies); // a partial match copies: the cached sequence keeps its slot and its answer
        Assert.Equal(2, h.Engine.GetStats().Prefix.CachedSlots);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void An_evicted_prefix_falls_back_to_a_full_prefill_with_the_same_tokens()
    {
        using var h = new EngineHarness(Options(cacheSlots: 1));
        var first = h.Prompt(20);
        var (_, turn1) = Submit(h, Request(first, 5));
        h.RunToIdle();
        Submit(h, Request(h.Prompt(10), 3, image: "other")); // the one cache slot goes to this one
        h.RunToIdle();
        var second = NextTurn(first, turn1.Tokens, 900, 901);
        var stepsBefore = h.Runner.Plans.Count;

        var (id2, turn2) = Submit(h, Request(second, 5));
        h.RunToIdle();

        Assert.Equal(0, turn2.Final.CachedPromptTokens);
        Assert.Equal(0, h.Runner.Plans.Skip(stepsBefore).SelectMany(p => p.Prefills).First(c => c.RequestId == id2).Start);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => FakeModelRunner.HashToken(second, i)), turn2.Tokens);
        Assert.True(h.Engine.GetStats().Prefix.Evictions >= 1);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Cached_slots_never_refuse_an_admission_that_fits_without_them()
    {
        using var h = new EngineHarness(Options(cacheSlots: 2, maxRunning: 2));
        Submit(h, Request(h.Prompt(10), 2, image: "a"));
        Submit(h, Request(h.Prompt(10), 2, image: "b"));
        h.RunToIdle();
        Assert.Equal(2, h.Engine.GetStats().Prefix.CachedSlots);

        var (idC, c) = Submit(h, Request(h.Prompt(10), 2, image: "c"));
        var (idD, d) = Submit(h, Request(h.Prompt(10), 2, image: "d"));
        h.Engine.Step();

        Assert.True(h.Runner.LastPlan.Contains(idC) && h.Runner.LastPlan.Contains(idD), h.Runner.Transcript());
        h.RunToIdle();
        Assert.Equal(2, c.Tokens.Count);
        Assert.Equal(2, d.Tokens.Count);
        Assert.Equal(2, h.Engine.GetStats().Prefix.Evictions);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Least_recently_used_is_evicted_first()
    {
        using var h = new EngineHarness(Options(cacheSlots: 2));
        var a = h.Prompt(12);
        var b = h.Prompt(12);
        var (_, ra) = Submit(h, Request(a, 2));
        h.RunToIdle();
        Submit(h, Request(b, 2));
        h.RunToIdle();
        var (_, again) = Submit(h, Request(a, 2)); // touches a's entry (a partial match copies from it)
        h.RunToIdle();
        Assert.Equal(a.Length - 1, again.Final.CachedPromptTokens);

        var evictionsBefore = h.Engine.GetStats().Prefix.Evictions;
        var (_, rb) = Submit(h, Request(b, 2)); // b is now the least recently used of three finished sequences
        h.RunToIdle();

        Assert.Equal(0, rb.Final.CachedPromptTokens);
        Assert.True(h.Engine.GetStats().Prefix.Evictions > evictionsBefore);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Parallel_prompts_sharing_an_image_prefix_prefill_it_once()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4, maxRunning: 8, budget: 64));
        var shared = h.Prompt(40);
        var tails = Enumerable.Range(0, 6).Select(_ => h.Prompt(3)).ToList();
        var prompts = tails.Select(t => (int[])[.. shared, .. t]).ToList();

        var sinks = prompts.Select(p => Submit(h, Request(p, 3)).Sink).ToList();
        h.RunToIdle();

        Assert.Equal(shared.Length + tails.Sum(t => t.Length), h.Runner.PrefilledTokens);
        Assert.Equal(0, sinks[0].Final.CachedPromptTokens);
        Assert.All(sinks.Skip(1), s => Assert.Equal(shared.Length, s.Final.CachedPromptTokens));
        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(Enumerable.Range(0, 3).Select(k => FakeModelRunner.HashToken(prompts[i], k)), sinks[i].Tokens);
        }
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void Requests_without_an_image_identity_share_nothing()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4));
        var prompt = h.Prompt(20);
        h.Engine.Submit(EngineHarness.Request(prompt, 3), new RecordingSink());
        h.RunToIdle();
        var sink = new RecordingSink();
        h.Engine.Submit(EngineHarness.Request(prompt, 3), sink);
        h.RunToIdle();

        Assert.Equal(0, sink.Final.CachedPromptTokens);
        Assert.Equal(0, h.Engine.GetStats().Prefix.CachedSlots);
        h.AssertRunnerSawNoViolations();
    }

    [Fact]
    public void A_sequence_ended_by_a_runner_failure_leaves_no_rows_to_reuse()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4));
        var prompt = h.Prompt(20);
        h.Runner.OnExecute = plan => throw new InvalidOperationException("boom");
        var (_, failed) = Submit(h, Request(prompt, 3));
        h.RunToIdle();
        Assert.Equal(FinishReason.Error, failed.Final.Reason);
        h.Runner.OnExecute = null;

        var (_, again) = Submit(h, Request(prompt, 3));
        h.RunToIdle();

        Assert.Equal(0, again.Final.CachedPromptTokens);
        Assert.Equal(1, h.Engine.GetStats().Prefix.CachedSlots); // only the successful one
    }

    [Fact]
    public void An_aborted_sequence_keeps_what_it_prefilled_for_the_next_request()
    {
        using var h = new EngineHarness(Options(cacheSlots: 4, budget: 16));
        var prompt = h.Prompt(40);
        var (id, aborted) = Submit(h, Request(prompt, 3));
        h.Engine.Step(); // 16 of its 40 prompt tokens
        h.Engine.Abort(id);
        h.RunToIdle();
        Assert.Equal(FinishReason.Aborted, aborted.Final.Reason);

        var (_, next) = Submit(h, Request(prompt, 3));
        h.RunToIdle();

        Assert.Equal(16, next.Final.CachedPromptTokens);
        Assert.Equal(Enumerable.Range(0, 3).Select(i => FakeModelRunner.HashToken(prompt, i)), next.Tokens);
        h.AssertRunnerSawNoViolations();
    }
}
