using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>
/// The prefix cache (Decoder:PrefixCacheSlots) is exact: a request served from reused KV rows gives the tokens a cold
/// prefill gives, in float32 on every golden case — a repeat, a chat-style continuation, an evicted prefix, and parallel
/// prompts sharing an image prefix. Cold runs come from a second worker with the cache off, in the same test.
/// </summary>
public sealed class PrefixCacheTests
{
    private static readonly Dictionary<string, string> Off = new() { ["Decoder__PrefixCacheSlots"] = "0" };

    /// <summary>A next turn: the case's prompt, what it generated (its final token too: the decoder never fed it), then a question.</summary>
    private static DecodeRequest Continuation(GoldenPrompt prompt, IReadOnlyList<int> generated)
    {
        var request = prompt.ToRequest();
        request.InputIds.Add(generated.Select(t => (uint)t));
        request.InputIds.Add(Question(prompt));
        return request;
    }

    /// <summary>The case's own text after the image span (at least one token): a question in the vocabulary.</summary>
    private static uint[] Question(GoldenPrompt prompt)
    {
        var rows = prompt.ImageEmbeds.Length / prompt.HiddenSize;
        var text = prompt.InputIds.Skip((int)prompt.ImageOffset + rows + 1).ToArray();
        return text.Length > 0 ? text : [prompt.InputIds[^1]];
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task Repeats_and_continuations_of_every_golden_case_give_the_tokens_of_a_cold_prefill() =>
        await RepeatsAndContinuationsAsync([], againstReference: true);

    /// <summary>
    /// bfloat16 on the native kernels, which are batch-invariant (a row's result does not depend on the rows beside it),
    /// so reused rows are the same bits as recomputed ones; compared with a cache-off worker, not the float32 reference.
    /// </summary>
    [Fact]
    [Trait("Category", "Golden")]
    public async Task In_bfloat16_on_the_native_kernels_reuse_gives_the_tokens_of_a_cold_prefill() =>
        await RepeatsAndContinuationsAsync(new() { ["Decoder__DType"] = "bfloat16", ["Decoder__Kernels"] = "native" }, againstReference: false);

    private static async Task RepeatsAndContinuationsAsync(Dictionary<string, string> settings, bool againstReference)
    {
        var cases = GoldenPrompts.Cases();
        Assert.NotEmpty(cases);
        await using var warm = await DecoderWorkerHost.StartAsync(settings);
        await using var cold = await DecoderWorkerHost.StartAsync(new(settings) { ["Decoder__PrefixCacheSlots"] = "0" });

        foreach (var prompt in cases)
        {
            var first = await warm.GenerateAsync(prompt.ToRequest());
            var expected = againstReference ? prompt.ExpectedNewTokens : (await cold.GenerateAsync(prompt.ToRequest())).Tokens.ToArray();
            Assert.True(expected.SequenceEqual(first.Tokens), $"{prompt.Name}: got [{string.Join(", ", first.Tokens)}], expected [{string.Join(", ", expected)}]");

            var repeat = await warm.GenerateAsync(prompt.ToRequest());
            Assert.Equal((uint)prompt.InputIds.Length - 1, repeat.Final.Usage.CachedPromptTokens);
            Assert.True(expected.SequenceEqual(repeat.Tokens), $"{prompt.Name} repeated: got [{string.Join(", ", repeat.Tokens)}]");

            var next = Continuation(prompt, first.Tokens);
            var reused = await warm.GenerateAsync(next);
            var reference = await cold.GenerateAsync(next);
            // Every token the first request wrote into its slot: its prompt and all it generated but the last.
            Assert.Equal((uint)(prompt.InputIds.Length + first.Tokens.Count - 1), reused.Final.Usage.CachedPromptTokens);
            Assert.Equal(0u, reference.Final.Usage.CachedPromptTokens);
            Assert.True(reference.Tokens.SequenceEqual(reused.Tokens),
                $"{prompt.Name} continued: cold [{string.Join(", ", reference.Tokens)}], from the cache [{string.Join(", ", reused.Tokens)}]");
        }

        var info = (await warm.InfoAsync()).PrefixCache;
        Assert.NotNull(info);
        Assert.True(info.Hits >= (ulong)(2 * cases.Count), $"hits {info.Hits}");
        Assert.True(info.CachedSlots > 0 && info.CachedTokens > 0);
        Assert.True(info.TokensSaved > 0);
        Assert.Null((await cold.InfoAsync()).PrefixCache);
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task An_evicted_prefix_falls_back_to_a_full_prefill_with_identical_tokens()
    {
        var prompt = GoldenPrompts.Cases()[0];
        await using var warm = await DecoderWorkerHost.StartAsync(new() { ["Decoder__PrefixCacheSlots"] = "1" });
        await using var cold = await DecoderWorkerHost.StartAsync(Off);
        var first = await warm.GenerateAsync(prompt.ToRequest());

        // Another image (the embeddings halved) takes the one cache slot.
        var other = prompt with { ImageEmbeds = prompt.ImageEmbeds.Select(v => v * 0.5f).ToArray() };
        await warm.GenerateAsync(other.ToRequest());
        Assert.True((await warm.InfoAsync()).PrefixCache.Evictions >= 1);

        var next = Continuation(prompt, first.Tokens);
        var again = await warm.GenerateAsync(next);
        var reference = await cold.GenerateAsync(next);

        Assert.Equal(0u, again.Final.Usage.CachedPromptTokens);
        Assert.True(reference.Tokens.SequenceEqual(again.Tokens),
            $"cold [{string.Join(", ", reference.Tokens)}], after eviction [{string.Join(", ", again.Tokens)}]");
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task Parallel_prompts_over_one_image_prefill_their_shared_prefix_once()
    {
        var prompt = GoldenPrompts.Cases()[0];
        await using var warm = await DecoderWorkerHost.StartAsync();
        await using var cold = await DecoderWorkerHost.StartAsync(Off);
        // Phrase grounding's shape: one image prefix, a different short tail per phrase (here the case's text, rotated).
        var question = Question(prompt);
        var requests = Enumerable.Range(0, 6).Select(k =>
        {
            var request = prompt.ToRequest();
            request.InputIds.Add(question.Skip(k % question.Length).Concat(question.Take(k % question.Length)).Append((uint)(4 + k)));
            return request;
        }).ToList();
        var shared = requests.Skip(1).Min(r => CommonPrefix(requests[0].InputIds, r.InputIds));

        var results = await Task.WhenAll(requests.Select(r => warm.GenerateAsync(r)));
        var references = await Task.WhenAll(requests.Select(r => cold.GenerateAsync(r)));

        var cached = results.Select(r => (int)r.Final.Usage.CachedPromptTokens).ToList();
        Assert.Equal(1, cached.Count(c => c == 0));
        Assert.All(cached.Where(c => c > 0), c => Assert.True(c >= shared, $"cached {c} < shared prefix {shared}: [{string.Join(", ", cached)}]"));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.True(references[i].Tokens.SequenceEqual(results[i].Tokens),
                $"prompt {i}: cold [{string.Join(", ", references[i].Tokens)}], shared [{string.Join(", ", results[i].Tokens)}]");
        }
    }

    private static int CommonPrefix(Google.Protobuf.Collections.RepeatedField<uint> a, Google.Protobuf.Collections.RepeatedField<uint> b)
    {
        var i = 0;
        while (i < a.Count && i < b.Count && a[i] == b[i])
        {
            i++;
        }
        return i;
    }
}
