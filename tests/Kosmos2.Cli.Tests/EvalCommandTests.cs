using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// <c>kosmos2 eval</c> on a small dataset built from the golden checkpoint's own answers: the boxes it gives for some
/// expressions are the ground truth of those items, a quarter of them (IoU 0.25) the ground truth of others, so the
/// exact accuracy is known before the run and the eval must print exactly it.
/// </summary>
[Collection(GoldenUpCollection.Name)]
[Trait("Category", "Golden")]
public sealed class EvalCommandTests(GoldenUpFixture up)
{
    private static readonly string[] Expressions = ["a red circle", "the blue square", "the left object", "a shape", "the background"];

    /// <summary>Constrained, so a random-weight model writes a box after every phrase; eval is run with the same options.</summary>
    private static readonly string[] RequestOptions = ["--constrain-grounding", "--max-new-tokens", "12"];

    [Fact]
    public async Task Eval_prints_exactly_the_accuracy_and_recall_the_dataset_was_built_to_have()
    {
        var folder = Directory.CreateDirectory(Path.Combine(up.Scratch, "eval")).FullName;
        var items = GoldenUpFixture.Images.SelectMany(image => Expressions.Select(e => (Image: image, Expression: e))).ToList();
        var predicted = await PredictAsync(folder, items);
        // Every third item (deterministically) gets a wrong box; an item the model gave no box can never be right.
        var wrong = Enumerable.Range(0, items.Count).Select(i => i % 3 == 1).ToList();
        var expectedCorrect = Enumerable.Range(0, items.Count).Count(i => !wrong[i] && predicted[i] is not null);
        Assert.InRange(expectedCorrect, 1, items.Count - 1);

        // RefCOCO-style, boxes as COCO writes them (xywh), categories per image.
        var refcoco = Path.Combine(folder, "refcoco.json");
        File.WriteAllText(refcoco, JsonSerializer.Serialize(items.Select((item, i) =>
        {
            var truth = Truth(predicted[i], wrong[i]);
            return new
            {
                id = $"ref-{i}",
                image = Path.GetFileName(item.Image),
                expression = item.Expression,
                bbox = new[] { truth[0], truth[1], truth[2] - truth[0], truth[3] - truth[1] },
                category = Path.GetFileNameWithoutExtension(item.Image),
            };
        })));
        var report = Path.Combine(folder, "rec-report.json");
        var rec = await CliProcess.RunAsync(["eval", refcoco, "--images", Path.GetDirectoryName(items[0].Image)!, "--report", report, .. Client()]);
        Assert.True(rec.ExitCode == 0, rec.Stdout + rec.Stderr);
        Assert.Matches($@"\n  all +{expectedCorrect}/{items.Count}  {Regex.Escape(Percent(expectedCorrect, items.Count))}\n", rec.Stdout);
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal("rec_accuracy_iou_0.5", json["metric"]!.GetValue<string>());
        Assert.Equal("<grounding><phrase>{expression}</phrase>", json["prompt"]!.GetValue<string>());
        Assert.Equal(expectedCorrect, json["correct"]!.GetValue<int>());
        Assert.Equal(items.Count, json["total"]!.GetValue<int>());
        foreach (var image in GoldenUpFixture.Images)
        {
            var indices = Enumerable.Range(0, items.Count).Where(i => items[i].Image == image).ToList();
            var category = json["categories"]![Path.GetFileNameWithoutExtension(image)]!;
            Assert.Equal(indices.Count(i => !wrong[i] && predicted[i] is not null), category["correct"]!.GetValue<int>());
            Assert.Equal(indices.Count, category["total"]!.GetValue<int>());
        }

        // Flickr30k-style, corners (xyxy): a right phrase lists a wrong box first, so only "any of the boxes" finds it.
        var flickr = Path.Combine(folder, "flickr.jsonl");
        File.WriteAllLines(flickr, GoldenUpFixture.Images.Select(image =>
        {
            var indices = Enumerable.Range(0, items.Count).Where(i => items[i].Image == image).ToList();
            var caption = string.Join(" and ", indices.Select(i => items[i].Expression));
            var start = 0;
            var phrases = new List<object>();
            foreach (var i in indices)
            {
                var end = start + items[i].Expression.Length;
                var boxes = wrong[i] || predicted[i] is null ? new[] { Truth(predicted[i], wrong: true) } : [Truth(predicted[i], wrong: true), predicted[i]!];
                phrases.Add(new { span = new[] { start, end }, boxes });
                start = end + " and ".Length;
            }
            return JsonSerializer.Serialize(new { image, caption, phrases });
        }));
        var grounding = await CliProcess.RunAsync(["eval", flickr, "--box-format", "xyxy", "--report", Path.Combine(folder, "pg-report.json"), .. Client()]);
        Assert.True(grounding.ExitCode == 0, grounding.Stdout + grounding.Stderr);
        Assert.Contains("Phrase grounding R@1", grounding.Stdout);
        Assert.Matches($@"\n  all +{expectedCorrect}/{items.Count}  {Regex.Escape(Percent(expectedCorrect, items.Count))}\n", grounding.Stdout);
    }

    [Fact]
    public async Task Eval_rejects_a_box_in_the_wrong_format_with_what_to_fix()
    {
        var folder = Directory.CreateDirectory(Path.Combine(up.Scratch, "eval-bad")).FullName;
        var dataset = Path.Combine(folder, "refcoco.json");
        File.WriteAllText(dataset, JsonSerializer.Serialize(new[] { new { image = GoldenUpFixture.Images[0], expression = "a shape", box = new[] { 50.0, 60, 10, 20 } } }));
        var run = await CliProcess.RunAsync(["eval", dataset, "--box-format", "xyxy", "--gateway", up.Gateway]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("item 0: a box's second corner is left of or above its first", run.Stderr);
    }

    private string[] Client() => ["--gateway", up.Gateway, "--api-key", "secret-key-0123456789", .. RequestOptions];

    /// <summary>The model's own top box (pixels) for each item, through <c>kosmos2 batch</c> with the eval's REC task.</summary>
    private async Task<double[]?[]> PredictAsync(string folder, List<(string Image, string Expression)> items)
    {
        var manifest = Path.Combine(folder, "predict.jsonl");
        File.WriteAllLines(manifest, items.Select((item, i) => JsonSerializer.Serialize(new { id = i.ToString(CultureInfo.InvariantCulture), image = item.Image, task = "rec", text = item.Expression })));
        var output = Path.Combine(folder, "predict-out.jsonl");
        var run = await CliProcess.RunAsync(["batch", manifest, "--output", output, .. Client()]);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var predicted = new double[]?[items.Count];
        foreach (var line in File.ReadAllLines(output))
        {
            var node = JsonNode.Parse(line)!;
            var entities = node["entities"]!.AsArray();
            predicted[int.Parse(node["id"]!.GetValue<string>(), CultureInfo.InvariantCulture)] = entities.Count > 0
                ? entities[0]!["boxes_px"]![0]!.AsArray().Select(v => v!.GetValue<double>()).ToArray()
                : null;
        }
        return predicted;
    }

    /// <summary>The ground truth: the predicted box, or its top-left quarter (IoU 0.25 with it) when the item is to be wrong.</summary>
    private static double[] Truth(double[]? predicted, bool wrong)
    {
        if (predicted is null)
        {
            return [0, 0, 1, 1];
        }
        return wrong
            ? [predicted[0], predicted[1], predicted[0] + (predicted[2] - predicted[0]) / 2, predicted[1] + (predicted[3] - predicted[1]) / 2]
            : predicted;
    }

    private static string Percent(int correct, int total) => (100.0 * correct / total).ToString("0.00", CultureInfo.InvariantCulture) + "%";
}
