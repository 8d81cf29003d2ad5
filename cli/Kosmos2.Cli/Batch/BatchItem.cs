using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli.Batch;

/// <summary>
/// One input of a batch: its id (the key a rerun skips by), the image file, the task and the task's fields.
/// <see cref="ToRequest"/> makes the same request the single-image command of that task makes.
/// </summary>
internal sealed record BatchItem(
    string Id,
    string ImagePath,
    string Task,
    IReadOnlyList<string> Phrases,
    string? Text,
    IReadOnlyList<string> Boxes,
    string? Prompt)
{
    /// <summary>The tasks and the single-image command each mirrors.</summary>
    public static readonly string[] Tasks = ["caption", "detailed", "ground", "refer", "ask", "rec", "generate"];

    public const string TasksHelp = "caption (brief), detailed, ground (phrases), refer (boxes [+ text as the phrase]), ask (text), "
        + "rec (text: the expression to locate), generate (prompt)";

    /// <summary>What is missing for this item's task, or null when it can be sent.</summary>
    public string? Problem() => Task switch
    {
        "caption" or "detailed" => null,
        "ground" when Phrases.Count == 0 || Phrases.Any(string.IsNullOrWhiteSpace) => "task ground needs \"phrases\": one or more non-blank phrases",
        "refer" when Boxes.Count == 0 => "task refer needs \"boxes\": [[x1, y1, x2, y2], …] (pixels, or normalised when all ≤ 1)",
        "ask" or "rec" when string.IsNullOrWhiteSpace(Text) => $"task {Task} needs \"text\"",
        "generate" when string.IsNullOrWhiteSpace(Prompt) => "task generate needs \"prompt\"",
        "ground" or "refer" or "ask" or "rec" or "generate" => null,
        _ => $"unknown task '{Task}' (one of {string.Join(", ", Tasks)})",
    };

    /// <summary>The request for this item (image, stopping and sampling are the run's and are set by the runner).</summary>
    public GenerateRequest ToRequest()
    {
        var request = new GenerateRequest();
        switch (Task)
        {
            case "caption":
                request.Task = TaskKind.BriefCaption;
                break;
            case "detailed":
                request.Task = TaskKind.DetailedCaption;
                break;
            case "ground":
                request.Task = TaskKind.PhraseGrounding;
                request.Phrases.Add(Phrases);
                break;
            case "refer":
                request.Task = TaskKind.ReferringExpressionGeneration;
                request.Regions.Add(ClientCommands.RegionOf(Boxes, Text ?? ""));
                break;
            case "ask":
                request.Task = TaskKind.Vqa;
                request.Text = Text;
                break;
            case "rec":
                request.Task = TaskKind.ReferringExpressionComprehension;
                request.Text = Text;
                break;
            case "generate":
                request.Prompt = Prompt;
                break;
            default:
                throw new InvalidOperationException(Problem());
        }
        return request;
    }
}
