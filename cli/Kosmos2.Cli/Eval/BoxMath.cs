namespace Kosmos2.Cli.Eval;

/// <summary>How a dataset writes a box: corners <c>[x1, y1, x2, y2]</c> or COCO's <c>[x, y, width, height]</c>.</summary>
internal enum BoxFormat
{
    Xyxy,
    Xywh,
}

/// <summary>
/// The box arithmetic of <c>kosmos2 eval</c>, pure and in one place: format conversion and intersection over union.
/// Boxes are corners <c>[x1, y1, x2, y2]</c> once read; pixels or normalised, as long as both boxes use the same unit.
/// </summary>
internal static class BoxMath
{
    /// <summary>The paper's threshold: a prediction is right when its IoU with the ground truth is at least 0.5.</summary>
    public const double Threshold = 0.5;

    /// <summary>A box as the dataset writes it, as corners; null (with <paramref name="problem"/>) when it is not a box.</summary>
    public static double[]? ToCorners(IReadOnlyList<double> values, BoxFormat format, out string? problem)
    {
        problem = null;
        if (values.Count != 4)
        {
            problem = $"a box has 4 numbers (got {values.Count})";
            return null;
        }
        if (values.Any(v => !double.IsFinite(v)))
        {
            problem = "a box has a number that is not finite";
            return null;
        }
        var corners = format == BoxFormat.Xywh
            ? [values[0], values[1], values[0] + values[2], values[1] + values[3]]
            : values.ToArray();
        if (corners[2] < corners[0] || corners[3] < corners[1])
        {
            problem = format == BoxFormat.Xywh
                ? "a box has a negative width or height"
                : "a box's second corner is left of or above its first (is the file xywh? then --box-format xywh)";
            return null;
        }
        return corners;
    }

    public static double Area(IReadOnlyList<double> box) => Math.Max(0, box[2] - box[0]) * Math.Max(0, box[3] - box[1]);

    /// <summary>
    /// Intersection over union of two corner boxes. Boxes that only touch share no area (0); two boxes of zero area
    /// have no union, and count as 0 rather than NaN, so a degenerate box never counts as a hit.
    /// </summary>
    public static double IoU(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var inter = Area([Math.Max(a[0], b[0]), Math.Max(a[1], b[1]), Math.Min(a[2], b[2]), Math.Min(a[3], b[3])]);
        var union = Area(a) + Area(b) - inter;
        return union > 0 ? inter / union : 0;
    }

    /// <summary>Whether <paramref name="predicted"/> hits any of <paramref name="truths"/> (IoU ≥ 0.5); the best IoU.</summary>
    public static (bool Hit, double BestIoU) Match(IReadOnlyList<double>? predicted, IEnumerable<IReadOnlyList<double>> truths)
    {
        if (predicted is null)
        {
            return (false, 0);
        }
        var best = truths.Select(t => IoU(predicted, t)).DefaultIfEmpty(0).Max();
        return (best >= Threshold, best);
    }
}
