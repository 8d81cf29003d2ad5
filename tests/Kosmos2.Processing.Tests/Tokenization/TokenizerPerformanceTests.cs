using System.Diagnostics;
using Kosmos2.Processing.Tokenization;
using Xunit.Abstractions;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>
/// A real-scale model (a synthetic 64,000-piece model) loads with the real layout and encodes. Load and encode
/// times are written to the test output only: timing belongs in benchmarks, not in assertions on a shared machine
/// (targets: encode of a ~100-char prompt well under 1 ms, load well under 1 s).
/// </summary>
public sealed class TokenizerPerformanceTests(ITestOutputHelper output)
{
    private const string Prompt = "<grounding> An image of<phrase> a snowman</phrase><object><patch_index_0044><patch_index_0863></object> warming himself by a fire.";

    [Theory]
    [InlineData(SentencePieceModelType.Bpe)]
    [InlineData(SentencePieceModelType.Unigram)]
    public void Real_size_model_loads_and_encodes_fast(SentencePieceModelType modelType)
    {
        var charsmap = SentencePieceModelFile.Load(Path.Combine(RepoPaths.GoldenModelDir, Kosmos2Tokenizer.ModelFileName)).Normalizer.PrecompiledCharsmap;
        var dir = Directory.CreateTempSubdirectory("kosmos2-tok-perf-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, Kosmos2Tokenizer.ModelFileName), SyntheticSentencePieceModel.Build(64_000, modelType, charsmap));

            Kosmos2Tokenizer.Load(dir); // JIT warm-up
            var loadMs = double.MaxValue;
            Kosmos2Tokenizer? tokenizer = null;
            for (var i = 0; i < 3; i++)
            {
                var sw = Stopwatch.StartNew();
                tokenizer = Kosmos2Tokenizer.Load(dir);
                loadMs = Math.Min(loadMs, sw.Elapsed.TotalMilliseconds);
            }
            Assert.NotNull(tokenizer);
            Assert.Equal(65_037, tokenizer.VocabSize);
            Assert.Equal(64_013, tokenizer.PatchIndexId(0));

            var perEncode = TimeEncode(tokenizer, Prompt);
            output.WriteLine($"{modelType}: load {loadMs:F1} ms (best of 3), encode {Prompt.Length} chars {perEncode * 1000:F1} µs");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Golden_tokenizers_encode_a_prompt_well_under_a_millisecond()
    {
        foreach (var dir in new[] { RepoPaths.GoldenModelDir, Path.Combine(RepoPaths.GoldenDir, "tokenizer_unigram") })
        {
            var load = Stopwatch.StartNew();
            var tokenizer = Kosmos2Tokenizer.Load(dir);
            load.Stop();
            var perEncode = TimeEncode(tokenizer, Prompt);
            output.WriteLine($"{tokenizer.ModelType}: load {load.Elapsed.TotalMilliseconds:F1} ms, encode {perEncode * 1000:F1} µs");
        }
    }

    /// <summary>Median-of-5 milliseconds per encode.</summary>
    private static double TimeEncode(Kosmos2Tokenizer tokenizer, string text)
    {
        const int Iterations = 500;
        for (var i = 0; i < 200; i++)
        {
            tokenizer.Encode(text);
        }
        var samples = new double[5];
        for (var s = 0; s < samples.Length; s++)
        {
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < Iterations; i++)
            {
                tokenizer.Encode(text);
            }
            samples[s] = sw.Elapsed.TotalMilliseconds / Iterations;
        }
        Array.Sort(samples);
        return samples[samples.Length / 2];
    }
}
