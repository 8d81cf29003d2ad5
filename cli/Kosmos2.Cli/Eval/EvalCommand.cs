using System.Collections.Concurrent;
using Kosmos2.Cli.Batch;

namespace Kosmos2.Cli.Eval;

/// <summary>
/// <c>kosmos2 eval DATASET</c>: the paper's grounding metrics on the user's own ground truth, through a gateway and the
/// batch runner (same concurrency and retries as <c>kosmos2 batch</c>): REC accuracy from a RefCOCO-style file, phrase
/// grounding R@1 from a Flickr30k-Entities-style file; a short table on stdout, a JSON report with <c>--report</c>.
/// </summary>
internal static class EvalCommand
{
    public const string Usage = "eval DATASET [--format refcoco|flickr30k] [--box-format xywh|xyxy] [--normalized] [--images DIR] [--report FILE.json]";

    public const string Summary = "the paper's grounding metrics on your data: REC accuracy at IoU ≥ 0.5, phrase grounding R@1";

    public const string Details = """
        refcoco (a .json DATASET): a JSON array; each object has "image" (or "file_name"), "expression" (or "sent",
          or a list "expressions"/"sentences": one item each), "box" (or "bbox"), optional "id" (or "ref_id") and
          "category" (or "category_id"). Metric: REC accuracy, prompt <grounding><phrase>{expression}</phrase>; the
          first box of the first entity is right at IoU ≥ 0.5 with the box.
        flickr30k (a .jsonl DATASET): one object per line: "image", "caption", "phrases": [{"span": [start, end)
          (character offsets in the caption), "boxes": [[…], …], optional "category", optional "phrase" (checked
          against the span)}], optional "id". Metric: phrase grounding R@1, one <grounding><phrase>{phrase}</phrase>
          request per phrase; right at IoU ≥ 0.5 with any of its boxes. Phrases without boxes are not scored.
        --box-format: how the file writes boxes: xywh (x, y, width, height; default for refcoco, as COCO/RefCOCO
          publish them) or xyxy (corners; default for flickr30k, as its XML annotations). Boxes are pixels of the
          original image; --normalized when they are 0…1 fractions instead.
        --images DIR: where image paths are relative to (default: the dataset's folder).
        Output: the table (all, then per category when the file has categories); --report FILE.json: the metric,
          the prompt and task used, totals, categories and every item (truth, predicted box, IoU, status).
        Requests: --concurrency N, --max-retries N, --max-new-tokens N and the sampling options as for batch;
          a failed request counts as wrong and is listed. Exit: 0 scored, 1 some requests failed, 2 bad input.
        """;

    private static readonly string[] Known =
        ["gateway", "api-key", "max-new-tokens", .. SamplingFlags.Names, "format", "box-format", "normalized", "images", "report", "concurrency", "max-retries"];

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "normalized"]);
        cli.RejectUnknown(Known);
        if (cli.Positionals.Count != 1)
        {
            throw new UsageException("eval takes one DATASET: a RefCOCO-style .json or a Flickr30k-Entities-style .jsonl (see `kosmos2 eval --help`).");
        }
        var dataset = cli.Positionals[0];
        if (!File.Exists(dataset))
        {
            throw new UsageException($"The dataset {dataset} does not exist.");
        }
        var format = cli.Option("format") ?? (dataset.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? "flickr30k" : "refcoco");
        if (format is not ("refcoco" or "flickr30k"))
        {
            throw new UsageException($"--format is refcoco or flickr30k (got '{format}').");
        }
        var boxFormat = ParseBoxFormat(cli.Option("box-format") ?? (format == "refcoco" ? "xywh" : "xyxy"));
        var normalized = cli.Flag("normalized");
        var imageRoot = Path.GetFullPath(cli.Option("images") ?? Path.GetDirectoryName(Path.GetFullPath(dataset))!);
        var settings = BatchCommand.Settings(cli);
        var (metric, items) = format == "refcoco"
            ? (EvalMetric.Rec, EvalDataset.ReadRefCoco(dataset, imageRoot, boxFormat))
            : (EvalMetric.Grounding, EvalDataset.ReadFlickr(dataset, imageRoot, boxFormat));
        if (items.Count == 0)
        {
            throw new UsageException($"{dataset} has nothing to score.");
        }
        var byId = items.ToDictionary(i => i.Id, StringComparer.Ordinal);
        if (byId.Count != items.Count)
        {
            throw new UsageException($"{dataset}: ids must be unique.");
        }
        var requests = items.Select(i => format == "refcoco"
            ? new BatchItem(i.Id, i.ImagePath, "rec", [], i.Text, [], null)
            : new BatchItem(i.Id, i.ImagePath, "ground", [i.Text], null, [], null)).ToList();

        var outcomes = new ConcurrentDictionary<string, BatchOutcome>(StringComparer.Ordinal);
        using var progress = new BatchProgress(Console.Error, !Console.IsErrorRedirected, requests.Count);
        var stopped = await BatchRunner.RunCommandAsync(cli, settings, requests, progress,
            outcome => outcomes[outcome.Item.Id] = outcome, () => "kosmos2 eval: interrupted; no report.");
        if (stopped is { } code)
        {
            return code;
        }

        var scores = items.Select(i => EvalReport.Score(i, outcomes[i.Id], normalized)).ToList();
        Console.Write(EvalReport.Table(metric, scores));
        if (cli.Option("report") is { } reportPath)
        {
            File.WriteAllText(reportPath, EvalReport.Json(metric, Path.GetFullPath(dataset), format, boxFormat, normalized, scores) + "\n");
            Console.Error.WriteLine($"kosmos2 eval: report in {reportPath}");
        }
        return scores.Any(s => s.Status != BatchOutcome.Ok) ? 1 : 0;
    }

    private static BoxFormat ParseBoxFormat(string text) => text.ToLowerInvariant() switch
    {
        "xyxy" => BoxFormat.Xyxy,
        "xywh" => BoxFormat.Xywh,
        _ => throw new UsageException($"--box-format is xywh (COCO/RefCOCO: x, y, width, height) or xyxy (corners); got '{text}'."),
    };
}
