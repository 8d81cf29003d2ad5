using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Prompts;

namespace Kosmos2.Testing;

/// <summary>A golden case's <c>bboxes</c> as the API's regions, the way a client sends them.</summary>
public static class GoldenRegions
{
    /// <summary>
    /// One region per phrase: <c>null</c> → a region with no box, <c>[x1, y1, x2, y2]</c> → normalised coordinates,
    /// <c>[ul, lr]</c> → a patch box, a list → several boxes in order. No <c>bboxes</c> → no regions.
    /// </summary>
    public static IEnumerable<Region> From(string? bboxesJson) =>
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
}
