using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Engine;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>The sampler with the grammar on scripted logits: what the mask changes, and the log-probabilities it reports.</summary>
public sealed class ConstrainedSamplingTests
{
    private static readonly Kosmos2Tokenizer Tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
    private static readonly GroundingVocabulary Vocab = GroundingVocabulary.FromVocabSize(Tokenizer.VocabSize);

    [Fact]
    public void Scripted_logits_that_write_a_malformed_box_give_a_well_formed_entity_with_the_constraint()
    {
        var prompt = Tokenizer.Encode("<s></image><grounding> A");
        var dog = Tokenizer.Encode(" dog")[0];
        // Step by step the model prefers: <phrase>, a piece, </phrase>, a patch where <object> belongs, a cell,
        // a bottom-right cell above the top-left, then </s> inside the open object.
        List<(int Id, float Logit)[]> script =
        [
            [(Vocab.PhraseStartId, 9)],
            [(dog, 9)],
            [(Vocab.PhraseEndId, 9)],
            [(Tokenizer.PatchIndexId(500), 9), (Vocab.ObjectStartId, 4)],
            [(Tokenizer.PatchIndexId(100), 9)],
            [(Kosmos2Tokenizer.EosId, 9), (Tokenizer.PatchIndexId(50), 8), (Tokenizer.PatchIndexId(600), 3)],
            [(Kosmos2Tokenizer.EosId, 9), (Vocab.ObjectEndId, 2)],
            [(Kosmos2Tokenizer.EosId, 9)],
        ];

        var free = Run(prompt, script, constrained: false);
        var constrained = Run(prompt, script, constrained: true);

        Assert.NotEmpty(GroundingForm.Problems(Tokenizer, prompt, free));
        Assert.Empty(GroundingPostProcessor.Process(Tokenizer.Decode([.. prompt, .. free])).Entities);

        Assert.Equal(
            [Vocab.PhraseStartId, dog, Vocab.PhraseEndId, Vocab.ObjectStartId, Tokenizer.PatchIndexId(100), Tokenizer.PatchIndexId(600), Vocab.ObjectEndId, Kosmos2Tokenizer.EosId],
            constrained);
        Assert.Empty(GroundingForm.Problems(Tokenizer, prompt, constrained));
        var entity = Assert.Single(GroundingPostProcessor.Process(Tokenizer.Decode([.. prompt, .. constrained])).Entities);
        Assert.Equal("dog", entity.Phrase);
        Assert.Equal([(100, 600)], entity.PatchBoxes);
    }

    [Fact]
    public void Greedy_log_probabilities_are_the_log_softmax_of_the_constrained_row()
    {
        var random = new Random(7);
        var logits = Enumerable.Range(0, Vocab.VocabSize).Select(_ => (float)(random.NextDouble() * 8)).ToArray();
        var expected = LogSoftmax(logits);
        var free = new TokenSampler(new SamplingParameters(ReturnLogprobs: true, TopLogprobs: 5), []).Next((float[])logits.Clone());
        Assert.Equal(expected[free.TokenId], free.Logprobs!.Logprob, 5);
        Assert.Equal(5, free.Logprobs.TopTokenIds.Count);
        Assert.Equal(free.TokenId, free.Logprobs.TopTokenIds[0]);
        var best = expected.Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(5).Select(p => p.i).ToList();
        Assert.Equal(best, free.Logprobs.TopTokenIds);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(expected[best[i]], free.Logprobs.TopLogprobs[i], 5);
        }

        // After </phrase> only <object> is allowed: it has all the probability, and no masked token is an alternative.
        var grammar = new GroundingGrammar(Vocab);
        var forced = new TokenSampler(new SamplingParameters(ReturnLogprobs: true, TopLogprobs: 5), Tokenizer.Encode("<phrase> a</phrase>"), grammar)
            .Next((float[])logits.Clone());
        Assert.Equal(Vocab.ObjectStartId, forced.TokenId);
        Assert.Equal(0f, forced.Logprobs!.Logprob); // probability 1
        Assert.Equal([Vocab.ObjectStartId], forced.Logprobs.TopTokenIds);
        Assert.Equal(GroundingState.ObjectOpen, grammar.State);
    }

    [Fact]
    public void Sampled_log_probabilities_are_those_of_the_distribution_drawn_from()
    {
        var random = new Random(11);
        var logits = Enumerable.Range(0, Vocab.VocabSize).Select(_ => (float)(random.NextDouble() * 8)).ToArray();
        const float temperature = 0.7f;
        const int topK = 4;
        var settings = new SamplingParameters(Temperature: temperature, TopK: topK, Seed: 3, ReturnLogprobs: true, TopLogprobs: 5);
        var picked = new TokenSampler(settings, []).Next((float[])logits.Clone());

        var kept = logits.Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(topK).ToList();
        var scaled = kept.Select(p => p.v / (double)temperature).ToArray();
        var logSum = scaled.Max() + Math.Log(scaled.Sum(s => Math.Exp(s - scaled.Max())));
        var index = kept.FindIndex(p => p.i == picked.TokenId);
        Assert.True(index >= 0, "the pick is one of the top-k");
        Assert.Equal(scaled[index] - logSum, picked.Logprobs!.Logprob, 5);
        Assert.Equal(kept.Select(p => p.i), picked.Logprobs.TopTokenIds); // only the top-k have probability
        Assert.Equal(1.0, picked.Logprobs.TopLogprobs.Sum(l => Math.Exp(l)), 5);

        // The same seed without log-probabilities picks the same token: reporting them changes nothing.
        Assert.Equal(picked.TokenId, new TokenSampler(settings with { ReturnLogprobs = false }, []).Next((float[])logits.Clone()).TokenId);
    }

    [Fact]
    public void Sampling_with_the_constraint_never_draws_a_masked_token()
    {
        var random = new Random(5);
        for (var seed = 0UL; seed < 50; seed++)
        {
            var grammar = new GroundingGrammar(Vocab);
            var sampler = new TokenSampler(new SamplingParameters(Temperature: 1.5f, Seed: seed), Tokenizer.Encode("<object>"), grammar);
            var logits = Enumerable.Range(0, Vocab.VocabSize).Select(_ => (float)random.NextDouble()).ToArray();
            var first = sampler.Next(logits).TokenId;
            Assert.True(Vocab.PatchIndex(first) >= 0, $"seed {seed}: {first} is not a patch token");
            var top = grammar.TopLeft;
            logits = Enumerable.Range(0, Vocab.VocabSize).Select(_ => (float)random.NextDouble()).ToArray();
            var second = Vocab.PatchIndex(sampler.Next(logits).TokenId);
            Assert.True(second / GroundingVocabulary.GridSide >= top / GroundingVocabulary.GridSide && second % GroundingVocabulary.GridSide >= top % GroundingVocabulary.GridSide,
                $"seed {seed}: box <{top}, {second}> is not ordered");
        }
    }

    private static List<int> Run(int[] prompt, List<(int Id, float Logit)[]> script, bool constrained)
    {
        var sampler = new TokenSampler(new SamplingParameters(), prompt, constrained ? new GroundingGrammar(Vocab) : null);
        var generated = new List<int>();
        foreach (var step in script)
        {
            var logits = new float[Vocab.VocabSize];
            foreach (var (id, logit) in step)
            {
                logits[id] = logit;
            }
            var token = sampler.Next(logits, script.Count - generated.Count).TokenId;
            generated.Add(token);
            if (token == Kosmos2Tokenizer.EosId)
            {
                break;
            }
        }
        return generated;
    }

    private static double[] LogSoftmax(float[] logits)
    {
        double max = logits.Max();
        var logSum = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return [.. logits.Select(l => l - logSum)];
    }
}
