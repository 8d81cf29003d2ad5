using System.Diagnostics;
using Kosmos2.Model;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Images;
using Kosmos2.Processing.Prompts;
using Kosmos2.Processing.Tokenization;
using TorchSharp;

namespace Kosmos2.Cli;

/// <summary>
/// <c>kosmos2 generate --model-dir DIR …</c>: the whole pipeline in this process, greedy, as the reference runs it
/// (tokenizer, Pillow-exact preprocessing, vision + projection, cached greedy decoding, post-processing).
/// </summary>
internal static class OfflineGenerator
{
    public static GenerationReport Run(string modelDir, byte[] imageBytes, string prompt, ReferringBoxes? boxes, int maxNewTokens, string dtype)
    {
        var total = Stopwatch.StartNew();
        var timings = new Dictionary<string, object>();
        var watch = Stopwatch.StartNew();
        var tokenizer = Kosmos2Tokenizer.Load(modelDir);
        torch.ScalarType scalarType;
        try
        {
            scalarType = ModelDTypes.Parse(dtype);
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"--dtype: {ex.Message}");
        }
        using var model = Kosmos2Model.Load(modelDir, scalarType, Kosmos2Checkpoint.ChooseDevice(), new Progress(Console.Error));
        timings["load"] = watch.Elapsed.TotalMilliseconds;

        watch.Restart();
        KosmosPrompt kosmosPrompt;
        try
        {
            kosmosPrompt = PromptBuilder.Build(prompt, boxes, text => tokenizer.Encode(text));
        }
        catch (InvalidPromptException ex)
        {
            throw new UsageException($"--prompt/--bboxes: {ex.Message}");
        }
        DecodedImage decoded;
        try
        {
            decoded = ImageDecoder.Decode(imageBytes);
        }
        catch (InvalidImageException ex)
        {
            throw new UsageException($"--image: {ex.Message}");
        }
        var pixels = ImagePreprocessor.Preprocess(decoded).PixelValues;
        timings["preprocess"] = watch.Elapsed.TotalMilliseconds;

        long[] newTokens;
        using (var scope = torch.NewDisposeScope())
        {
            watch.Restart();
            var embeds = model.EncodeImages(torch.tensor(pixels, [1, 3, 224, 224]));
            timings["vision"] = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            newTokens = Kosmos2GreedyGenerator.Generate(model, kosmosPrompt.InputIds.Select(i => (long)i).ToArray(), embeds, maxNewTokens, kosmosPrompt.ImageOffset);
            timings["generate"] = watch.Elapsed.TotalMilliseconds;
        }

        var newIds = newTokens.Select(t => (int)t).ToList();
        var decodedText = tokenizer.Decode([.. kosmosPrompt.InputIds, .. newIds]);
        var result = GroundingPostProcessor.Process(decodedText);
        timings["total"] = total.Elapsed.TotalMilliseconds;
        var entities = result.Entities.Select(e => new ReportEntity(
            e.Phrase, e.SpanStart, e.SpanEnd,
            e.Boxes.Select(b => new[] { b.X1, b.Y1, b.X2, b.Y2 }).ToList(),
            e.Boxes.Select(b => PatchIndexCodec.ToPixels(b, decoded.Width, decoded.Height)).Select(p => new[] { p.X1, p.Y1, p.X2, p.Y2 }).ToList())).ToList();
        return new GenerationReport(kosmosPrompt.InputIds, newIds, decodedText, result.CleanText, entities, timings);
    }

    /// <summary>Loading progress on stderr (the real checkpoint is 6.66 GB).</summary>
    private sealed class Progress(TextWriter writer) : IProgress<string>
    {
        public void Report(string value) => writer.WriteLine($"kosmos2: {value}");
    }
}
