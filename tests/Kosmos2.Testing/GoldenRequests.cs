using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Prompts;

namespace Kosmos2.Testing;

/// <summary>A golden case's <c>bboxes</c> as the API's regions, and the case as a request, the way a client sends them.</summary>
public static class GoldenRequests
{
    /// <summary>
    /// One region per phrase: <c>null</c> → a region with no box, <c>[x1, y1, x2, y2]</c> → normalised coordinates,
    /// <c>[ul, lr]</c> → a patch box, a list → several boxes in order. No <c>bboxes</c> → no regions.
    /// </summary>
    public static IEnumerable<Region> Regions(string? bboxesJson) =>
        (bboxesJson is null ? null : ReferringBoxes.Parse(bboxesJson))?.Phrases.Select(phrase => new Region
        {
            Frame = BoxFrame.Normalized,
            Boxes =
            {
                (phrase ?? []).Select(box => box switch
                {
                    PatchIndexReferringBox p => new Box { Patch = new PatchIndexBox { TopLeft = (uint)p.Ul, BottomRight = (uint)p.Lr } },
                    CoordinateReferringBox { Box: var c } => new Box { X1 = c.X1, Y1 = c.Y1, X2 = c.X2, Y2 = c.Y2 },
                    _ => throw new InvalidDataException($"unknown box form {box}"),
                }),
            },
        }) ?? [];

    /// <summary>A golden case as a public Generate request: its image file, prompt, regions and token budget.</summary>
    public static GenerateRequest Request(string imagePath, string prompt, string? bboxesJson, int maxNewTokens) => new()
    {
        Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(File.ReadAllBytes(imagePath)) },
        Prompt = prompt,
        Stopping = new StoppingParameters { MaxNewTokens = (uint)maxNewTokens },
        Regions = { Regions(bboxesJson) },
    };
}
