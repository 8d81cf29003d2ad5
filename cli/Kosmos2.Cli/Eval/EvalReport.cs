using System.Globalization;
using System.Text;
using System.Text.Json;
using Kosmos2.Cli.Batch;

namespace Kosmos2.Cli.Eval;

/// <summary>Which metric a run computes, and the prompt and scoring rule the report states for it.</summary>
internal sealed record EvalMetric(string Name, string Title, string Task, string Prompt, string Scoring)
{
    public static readonly EvalMetric Rec = new(
        "rec_accuracy_iou_0.5", "REC accuracy (IoU ≥ 0.5)", "TASK_KIND_REFERRING_EXPRESSION_COMPREHENSION",
        "<grounding><phrase>{expression}</phrase>",
        "the first box of the first entity is right when its IoU with the ground-truth box is ≥ 0.5; no box or a failed request is wrong");

    public static readonly EvalMetric Grounding = new(
        "phrase_grounding_recall_at_1", "Phrase grounding R@1 (IoU ≥ 0.5)", "TASK_KIND_PHRASE_GROUNDING",
        "<grounding><phrase>{phrase}</phrase> (one request per phrase, as the gateway grounds phrases)",
        "the first box of the first entity is right when its IoU with any of the phrase's ground-truth boxes is ≥ 0.5; no box or a failed request is wrong");
}

/// <summary>One scored item.</summary>
internal sealed record EvalScore(EvalItem Item, double[]? Predicted, double IoU, bool Correct, string Status, string? Error);

/// <summary>Scores outcomes against the ground truth and writes the JSON report and the short table.</summary>
internal static class EvalReport
{
    /// <summary>
    /// The top-1 box (first entity, first box) of an outcome, in the dataset's units: pixel boxes (<c>boxes_px</c>),
    /// or the normalised ones when the ground truth is normalised.
    /// </summary>
    public static EvalScore Score(EvalItem item, BatchOutcome outcome, bool normalized)
    {
        var entity = outcome.Report is { Entities.Count: > 0 } report ? report.Entities[0] : null;
        var boxes = normalized ? entity?.Boxes : entity?.PixelBoxes;
        var predicted = boxes is { Count: > 0 } ? boxes[0] : null;
        var (hit, iou) = BoxMath.Match(predicted, item.Truths);
        return new EvalScore(item, predicted, iou, hit, outcome.Status, outcome.Error);
    }

    /// <summary>Totals over all items, then per category (ordinal order) when any item has one.</summary>
    public static IReadOnlyList<(string Name, int Correct, int Total)> Rows(IReadOnlyList<EvalScore> scores)
    {
        var rows = new List<(string, int, int)> { ("all", scores.Count(s => s.Correct), scores.Count) };
        if (scores.Any(s => s.Item.Category is not null))
        {
            rows.AddRange(scores.GroupBy(s => s.Item.Category ?? "(none)").OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => ($"category {g.Key}", g.Count(s => s.Correct), g.Count())));
        }
        return rows;
    }

    public static string Table(EvalMetric metric, IReadOnlyList<EvalScore> scores)
    {
        var rows = Rows(scores);
        var width = rows.Max(r => r.Name.Length);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{metric.Title}, prompt {metric.Prompt}\n");
        foreach (var (name, correct, total) in rows)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {name.PadRight(width)}  {correct}/{total}  {Percent(correct, total)}\n");
        }
        var failed = scores.Count(s => s.Status != BatchOutcome.Ok);
        if (failed > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"  ({failed} requests failed and count as wrong: see \"status\" in the report)\n");
        }
        return text.ToString();
    }

    public static string Json(EvalMetric metric, string dataset, string format, BoxFormat boxFormat, bool normalized, IReadOnlyList<EvalScore> scores)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = GenerationReport.JsonOptions.Encoder, Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("metric", metric.Name);
            json.WriteString("dataset", dataset);
            json.WriteString("format", format);
            json.WriteString("box_format", boxFormat.ToString().ToLowerInvariant());
            json.WriteString("units", normalized ? "normalized" : "pixels");
            json.WriteString("task", metric.Task);
            json.WriteString("prompt", metric.Prompt);
            json.WriteString("scoring", metric.Scoring);
            var rows = Rows(scores);
            WriteRow(json, rows[0].Correct, rows[0].Total);
            json.WriteNumber("failed", scores.Count(s => s.Status != BatchOutcome.Ok));
            json.WriteStartObject("categories");
            foreach (var (name, correct, total) in rows.Skip(1))
            {
                json.WriteStartObject(name["category ".Length..]);
                WriteRow(json, correct, total);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteStartArray("items");
            foreach (var score in scores)
            {
                WriteItem(json, score);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteRow(Utf8JsonWriter json, int correct, int total)
    {
        json.WriteNumber("correct", correct);
        json.WriteNumber("total", total);
        json.WriteNumber("value", total > 0 ? (double)correct / total : 0);
    }

    private static void WriteItem(Utf8JsonWriter json, EvalScore score)
    {
        json.WriteStartObject();
        json.WriteString("id", score.Item.Id);
        json.WriteString("image", score.Item.ImagePath);
        json.WriteString("text", score.Item.Text);
        if (score.Item.Category is { } category)
        {
            json.WriteString("category", category);
        }
        json.WriteStartArray("truth");
        foreach (var box in score.Item.Truths)
        {
            WriteBox(json, box);
        }
        json.WriteEndArray();
        json.WritePropertyName("predicted");
        if (score.Predicted is { } predicted)
        {
            WriteBox(json, predicted);
        }
        else
        {
            json.WriteNullValue();
        }
        json.WriteNumber("iou", Math.Round(score.IoU, 6));
        json.WriteBoolean("correct", score.Correct);
        json.WriteString("status", score.Status);
        if (score.Error is not null)
        {
            json.WriteString("error", score.Error);
        }
        json.WriteEndObject();
    }

    private static void WriteBox(Utf8JsonWriter json, IReadOnlyList<double> box)
    {
        json.WriteStartArray();
        foreach (var v in box)
        {
            json.WriteNumberValue(v);
        }
        json.WriteEndArray();
    }

    private static string Percent(int correct, int total) =>
        total > 0 ? (100.0 * correct / total).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "n/a";
}
