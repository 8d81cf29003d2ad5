using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Testing;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>
/// The grounding constraint and log-probabilities through a real decoder worker, on every golden case: the
/// constraint's output is well-formed and leaves the reference's tokens alone where those already were; the
/// log-probabilities are <c>log_softmax</c> of the reference's logits behind each greedy pick.
/// </summary>
public sealed class GroundingGoldenTests
{
    /// <summary>Float32 logits of two implementations differ at rounding level (golden README: up to ~1e-4 on logits of ~10–20).</summary>
    private const double Tolerance = 1e-4;

    [Fact]
    [Trait("Category", "Golden")]
    public async Task With_the_constraint_every_golden_case_is_well_formed_and_already_well_formed_ones_are_unchanged()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        var cases = GoldenPrompts.Cases();
        Assert.NotEmpty(cases);
        await using var worker = await DecoderWorkerHost.StartAsync();

        var unchanged = 0;
        var constrainedRuns = await Task.WhenAll(cases.Select(c => worker.GenerateAsync(Constrained(c.ToRequest()))));
        for (var i = 0; i < cases.Count; i++)
        {
            var prompt = cases[i];
            var constrained = constrainedRuns[i].Tokens;
            var problems = GroundingForm.Problems(tokenizer, prompt.InputIds.Select(id => (int)id), constrained);
            Assert.True(problems.Count == 0, $"{prompt.Name} constrained: {string.Join("; ", problems)}");
            if (GroundingForm.Problems(tokenizer, prompt.InputIds.Select(id => (int)id), prompt.ExpectedNewTokens).Count == 0)
            {
                Assert.True(prompt.ExpectedNewTokens.SequenceEqual(constrained),
                    $"{prompt.Name}: the reference output is well-formed, yet the constraint changed it to [{string.Join(", ", constrained)}]");
                unchanged++;
            }
            CheckDivergesOnlyWhereTheReferenceBreaksTheGrammar(prompt, constrained);
            var (alone, _, _) = await worker.GenerateAsync(Constrained(prompt.ToRequest()));
            Assert.Equal(constrained, alone); // batched with the others or alone: the mask is per request
        }

        // Off means off: the same worker still gives the reference tokens.
        var (free, _, _) = await worker.GenerateAsync(cases[0].ToRequest());
        Assert.Equal(cases[0].ExpectedNewTokens, free);
        Console.WriteLine($"{unchanged} of {cases.Count} golden outputs were already well-formed and came out unchanged");
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task Log_probabilities_are_the_log_softmax_of_the_reference_logits_at_every_greedy_pick()
    {
        var cases = GoldenPrompts.Cases();
        Assert.NotEmpty(cases);
        await using var worker = await DecoderWorkerHost.StartAsync();

        foreach (var prompt in cases)
        {
            var request = prompt.ToRequest();
            request.Sampling = new DecodeSampling { ReturnLogprobs = true, TopLogprobs = 5 };
            var (tokens, logprobs) = await GenerateWithLogprobsAsync(worker, request);
            Assert.Equal(prompt.ExpectedNewTokens, tokens);
            Assert.Equal(tokens.Count, logprobs.Count);

            var reference = ReferenceTensors(prompt);
            var stepLogits = reference.Float32("step_logits");
            var vocab = (int)reference.Shape("step_logits")[^1];
            for (var step = 0; step < tokens.Count; step++)
            {
                var expected = LogSoftmax(stepLogits.AsSpan(step * vocab, vocab));
                var got = logprobs[step];
                Assert.True(Math.Abs(expected[tokens[step]] - got.Logprob) <= Tolerance,
                    $"{prompt.Name} step {step}: logprob {got.Logprob}, reference {expected[tokens[step]]}");
                Assert.Equal(5, got.TopTokenIds.Count);
                Assert.Equal(tokens[step], (int)got.TopTokenIds[0]); // greedy: the pick is the best
                for (var k = 0; k < got.TopTokenIds.Count; k++)
                {
                    Assert.True(Math.Abs(expected[got.TopTokenIds[k]] - got.TopLogprobs[k]) <= Tolerance,
                        $"{prompt.Name} step {step}: alternative {k} ({got.TopTokenIds[k]}) {got.TopLogprobs[k]}, reference {expected[got.TopTokenIds[k]]}");
                }
                var fifth = expected.Order().Reverse().ElementAt(4);
                Assert.True(got.TopLogprobs[4] >= fifth - Tolerance, $"{prompt.Name} step {step}: the 5th alternative is not the reference's 5th best");
            }
        }
    }

    [Fact]
    public async Task Top_logprobs_over_five_are_refused_with_invalid_argument()
    {
        var prompt = GoldenPrompts.Cases()[0];
        await using var worker = await DecoderWorkerHost.StartAsync();
        var request = prompt.ToRequest();
        request.Sampling = new DecodeSampling { ReturnLogprobs = true, TopLogprobs = 6 };

        var error = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(request));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("top_logprobs", error.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// The constrained tokens equal the reference's up to its first token the grammar refuses; there (same prefix,
    /// so the same logits) the pick is the best allowed token under the reference's own logits: the mask is exact.
    /// </summary>
    private static void CheckDivergesOnlyWhereTheReferenceBreaksTheGrammar(GoldenPrompt prompt, List<int> constrained)
    {
        var reference = ReferenceTensors(prompt);
        var vocab = (int)reference.Shape("step_logits")[^1];
        var grammar = new GroundingGrammar(GroundingVocabulary.FromVocabSize(vocab));
        grammar.Observe(prompt.InputIds.Select(id => (int)id).ToArray());
        for (var step = 0; step < prompt.ExpectedNewTokens.Length; step++)
        {
            var remaining = prompt.MaxNewTokens - step;
            if (grammar.IsAllowed(prompt.ExpectedNewTokens[step], remaining))
            {
                Assert.True(constrained.Count > step && constrained[step] == prompt.ExpectedNewTokens[step], $"{prompt.Name}: the constraint changed allowed token {step}");
                grammar.Advance(constrained[step]);
                continue;
            }
            var logits = reference.Float32("step_logits").AsSpan(step * vocab, vocab);
            var best = -1;
            for (var id = 0; id < vocab; id++)
            {
                if (grammar.IsAllowed(id, remaining) && (best < 0 || logits[id] > logits[best]))
                {
                    best = id;
                }
            }
            Assert.True(constrained.Count > step && constrained[step] == best,
                $"{prompt.Name} step {step}: the reference's {prompt.ExpectedNewTokens[step]} is refused; expected the best allowed {best}, got [{string.Join(", ", constrained)}]");
            return;
        }
    }

    /// <summary>The tensors beside the case.json whose name is the prompt's (folders are not assumed to be named after cases).</summary>
    private static SafetensorsReader ReferenceTensors(GoldenPrompt prompt)
    {
        var caseFile = Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "cases"), "case.json", SearchOption.AllDirectories)
            .Single(f => System.Text.Json.JsonDocument.Parse(File.ReadAllText(f)).RootElement.GetProperty("name").GetString() == prompt.Name);
        return new SafetensorsReader(Path.Combine(Path.GetDirectoryName(caseFile)!, "tensors.safetensors"));
    }

    private static DecodeRequest Constrained(DecodeRequest request)
    {
        request.Sampling = new DecodeSampling { ConstrainGrounding = true };
        return request;
    }

    private static async Task<(List<int> Tokens, List<DecodeLogprob> Logprobs)> GenerateWithLogprobsAsync(DecoderWorkerHost worker, DecodeRequest request)
    {
        using var call = worker.Client.Generate(request);
        var tokens = new List<int>();
        var logprobs = new List<DecodeLogprob>();
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            tokens.AddRange(message.TokenIds.Select(t => (int)t));
            logprobs.AddRange(message.Logprobs);
        }
        return (tokens, logprobs);
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits)
        {
            max = Math.Max(max, l);
        }
        double sum = 0;
        foreach (var l in logits)
        {
            sum += Math.Exp(l - max);
        }
        var logSum = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (var i = 0; i < logits.Length; i++)
        {
            result[i] = logits[i] - logSum;
        }
        return result;
    }
}
