using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Validation;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Prompts;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Generation;

/// <summary>One Kosmos-2 prompt to run: its text, the boxes for its <c>&lt;phrase&gt;</c>s, and token stop sequences.</summary>
public sealed record PlannedPrompt(string Text, ReferringBoxes? Boxes, bool StopAtObjectEnd);

/// <summary>
/// Turns a typed task into the prompts the Kosmos-2 paper and the reference's examples use (SPEC §8):
/// brief caption <c>&lt;grounding&gt;An image of</c>, detailed caption <c>&lt;grounding&gt;Describe this image in detail:</c>,
/// phrase grounding and referring expression comprehension <c>&lt;grounding&gt;&lt;phrase&gt;…&lt;/phrase&gt;</c> (one
/// generation per phrase, stopped at its <c>&lt;/object&gt;</c>), referring expression generation
/// <c>&lt;grounding&gt;&lt;phrase&gt;It&lt;/phrase&gt;&lt;object&gt;…&lt;/object&gt; is</c>, VQA <c>Question: … Answer:</c>.
/// A free prompt is used as given, with <c>regions</c> supplying the boxes of its <c>&lt;phrase&gt;</c>s in order.
/// </summary>
public static class TaskPrompts
{
    public const string BriefCaption = "<grounding>An image of";
    public const string DetailedCaption = "<grounding>Describe this image in detail:";

    public static IReadOnlyList<PlannedPrompt> Plan(GenerateRequest request, int imageWidth, int imageHeight)
    {
        switch (request.Task)
        {
            case TaskKind.Unspecified:
                if (string.IsNullOrWhiteSpace(request.Prompt))
                {
                    RpcErrors.InvalidArgument("Set `prompt` (a Kosmos-2 prompt such as \"<grounding>An image of\") or choose a `task`.");
                }
                return [new PlannedPrompt(request.Prompt, BoxesForPhrases(request.Prompt, request.Regions, imageWidth, imageHeight), false)];
            case TaskKind.BriefCaption:
                return [new PlannedPrompt(BriefCaption, null, false)];
            case TaskKind.DetailedCaption:
                return [new PlannedPrompt(DetailedCaption, null, false)];
            case TaskKind.PhraseGrounding:
                if (request.Phrases.Count == 0 || request.Phrases.Any(string.IsNullOrWhiteSpace))
                {
                    RpcErrors.InvalidArgument("TASK_KIND_PHRASE_GROUNDING needs `phrases`: one or more non-blank phrases to locate.");
                }
                return request.Phrases.Select(p => new PlannedPrompt($"<grounding><phrase>{Escape(p, "phrases")}</phrase>", null, true)).ToList();
            case TaskKind.ReferringExpressionComprehension:
                if (string.IsNullOrWhiteSpace(request.Text))
                {
                    RpcErrors.InvalidArgument("TASK_KIND_REFERRING_EXPRESSION_COMPREHENSION needs `text`: the expression to locate.");
                }
                return [new PlannedPrompt($"<grounding><phrase>{Escape(request.Text, "text")}</phrase>", null, true)];
            case TaskKind.ReferringExpressionGeneration:
                if (request.Regions.Count != 1)
                {
                    RpcErrors.InvalidArgument($"TASK_KIND_REFERRING_EXPRESSION_GENERATION needs exactly one region in `regions` (got {request.Regions.Count}).");
                }
                if (request.Regions[0].Boxes.Count == 0)
                {
                    RpcErrors.InvalidArgument("TASK_KIND_REFERRING_EXPRESSION_GENERATION needs a box in `regions[0].boxes`: the region to describe.");
                }
                return [new PlannedPrompt("<grounding><phrase>It</phrase> is", new ReferringBoxes([RegionBoxes(request.Regions[0], imageWidth, imageHeight)]), false)];
            case TaskKind.Vqa:
                if (string.IsNullOrWhiteSpace(request.Text))
                {
                    RpcErrors.InvalidArgument("TASK_KIND_VQA needs `text`: the question.");
                }
                return [new PlannedPrompt(QuestionPrompt.Vqa(request.Text.Trim()), null, false)];
            default:
                RpcErrors.InvalidArgument($"Unknown task {(int)request.Task}.");
                return [];
        }
    }

    /// <summary>
    /// Regions for a text with <c>&lt;phrase&gt;</c> tags: one region per tag, in order. Regions given for a text without
    /// tags are appended as <c> &lt;phrase&gt;{phrase}&lt;/phrase&gt;</c> (phrase defaults to "this region").
    /// </summary>
    public static (string Text, ReferringBoxes? Boxes) WithRegions(string text, IReadOnlyList<Region> regions, int imageWidth, int imageHeight)
    {
        if (regions.Count == 0)
        {
            return (text, null);
        }
        if (!text.Contains("<phrase>", StringComparison.Ordinal))
        {
            text = text.TrimEnd() + string.Concat(regions.Select(r => $" <phrase>{Escape(string.IsNullOrWhiteSpace(r.Phrase) ? "this region" : r.Phrase, "regions.phrase")}</phrase>"));
        }
        return (text, BoxesForPhrases(text, regions, imageWidth, imageHeight));
    }

    private static ReferringBoxes? BoxesForPhrases(string prompt, IReadOnlyList<Region> regions, int imageWidth, int imageHeight)
    {
        if (regions.Count == 0)
        {
            return null;
        }
        var phrases = CountPhrases(prompt);
        if (phrases != regions.Count)
        {
            RpcErrors.InvalidArgument($"`regions` has {regions.Count} entries but the prompt has {phrases} <phrase>…</phrase> pairs: give one region per phrase, in order.");
        }
        return new ReferringBoxes(regions.Select(r => RegionBoxes(r, imageWidth, imageHeight)));
    }

    private static List<ReferringBox>? RegionBoxes(Region region, int imageWidth, int imageHeight)
    {
        if (region.Boxes.Count == 0)
        {
            return null;
        }
        return region.Boxes.Select(b =>
        {
            if (b.Patch is { } patch)
            {
                return (ReferringBox)new PatchIndexReferringBox((int)patch.TopLeft, (int)patch.BottomRight);
            }
            var normalized = region.Frame == BoxFrame.Pixels
                ? PatchIndexCodec.Normalize(new PixelBox(b.X1, b.Y1, b.X2, b.Y2), imageWidth, imageHeight)
                : new NormalizedBox(b.X1, b.Y1, b.X2, b.Y2);
            return new CoordinateReferringBox(normalized);
        }).ToList();
    }

    private static int CountPhrases(string text)
    {
        var count = 0;
        for (var at = text.IndexOf("<phrase>", StringComparison.Ordinal); at >= 0; at = text.IndexOf("<phrase>", at + 8, StringComparison.Ordinal))
        {
            if (text.IndexOf("</phrase>", at, StringComparison.Ordinal) > at)
            {
                count++;
            }
        }
        return count;
    }

    /// <summary>User words go inside tags: a '&lt;' there would open a tag the model never saw.</summary>
    private static string Escape(string words, string field)
    {
        if (words.Contains('<', StringComparison.Ordinal) || words.Contains('>', StringComparison.Ordinal))
        {
            RpcErrors.InvalidArgument($"`{field}` must not contain '<' or '>' (got {RequestValidator.Quote(words)}).");
        }
        return words.Trim();
    }
}
