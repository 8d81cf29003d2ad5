using Kosmos2.Cli.Eval;

namespace Kosmos2.Cli.Tests;

/// <summary>The eval's IoU and box formats at their edges: zero area, touching, xywh vs xyxy, pixels vs normalised.</summary>
public sealed class BoxMathTests
{
    [Fact]
    public void Identical_boxes_have_IoU_one_and_disjoint_or_touching_boxes_zero()
    {
        Assert.Equal(1, BoxMath.IoU([10, 20, 50, 80], [10, 20, 50, 80]), 12);
        Assert.Equal(0, BoxMath.IoU([0, 0, 10, 10], [20, 20, 30, 30]));
        // Sharing an edge or a corner is no shared area.
        Assert.Equal(0, BoxMath.IoU([0, 0, 10, 10], [10, 0, 20, 10]));
        Assert.Equal(0, BoxMath.IoU([0, 0, 10, 10], [10, 10, 20, 20]));
    }

    [Fact]
    public void Partial_overlap_is_intersection_over_union()
    {
        // 10×10 boxes offset by 5 on x: intersection 50, union 150.
        Assert.Equal(1.0 / 3, BoxMath.IoU([0, 0, 10, 10], [5, 0, 15, 10]), 12);
        // A box inside another: the small area over the large one.
        Assert.Equal(0.25, BoxMath.IoU([0, 0, 10, 10], [0, 0, 5, 5]), 12);
    }

    [Fact]
    public void Zero_area_boxes_never_hit()
    {
        Assert.Equal(0, BoxMath.IoU([5, 5, 5, 5], [5, 5, 5, 5]));
        Assert.Equal(0, BoxMath.IoU([5, 5, 5, 9], [0, 0, 10, 10]));
        Assert.False(BoxMath.Match([5, 5, 5, 5], [[5, 5, 5, 5]]).Hit);
        Assert.False(BoxMath.Match(null, [[0, 0, 10, 10]]).Hit);
    }

    [Fact]
    public void The_threshold_is_inclusive_and_any_truth_may_match()
    {
        // IoU exactly 0.5: [0,0,10,10] vs [0,0,10,5] → 50 / 100.
        Assert.True(BoxMath.Match([0, 0, 10, 10], [[0, 0, 10, 5]]).Hit);
        Assert.False(BoxMath.Match([0, 0, 10, 10], [[0, 0, 10, 4.9]]).Hit);
        var (hit, best) = BoxMath.Match([0, 0, 10, 10], [[50, 50, 60, 60], [0, 0, 10, 10]]);
        Assert.True(hit);
        Assert.Equal(1, best, 12);
    }

    [Fact]
    public void Xywh_becomes_corners_and_xyxy_stays()
    {
        Assert.Equal([10.0, 20, 40, 60], BoxMath.ToCorners([10, 20, 30, 40], BoxFormat.Xywh, out var p1)!);
        Assert.Null(p1);
        Assert.Equal([10.0, 20, 30, 40], BoxMath.ToCorners([10, 20, 30, 40], BoxFormat.Xyxy, out _)!);
        // The same numbers read the other way are another box: the flag matters.
        Assert.NotEqual(1, BoxMath.IoU(BoxMath.ToCorners([10, 20, 30, 40], BoxFormat.Xywh, out _)!, BoxMath.ToCorners([10, 20, 30, 40], BoxFormat.Xyxy, out _)!));
    }

    [Fact]
    public void Malformed_boxes_say_what_is_wrong()
    {
        Assert.Null(BoxMath.ToCorners([1, 2, 3], BoxFormat.Xyxy, out var count));
        Assert.Contains("4 numbers", count);
        Assert.Null(BoxMath.ToCorners([30, 40, 10, 20], BoxFormat.Xyxy, out var order));
        Assert.Contains("xywh", order);
        Assert.Null(BoxMath.ToCorners([10, 20, -5, 4], BoxFormat.Xywh, out var negative));
        Assert.Contains("negative", negative);
        Assert.Null(BoxMath.ToCorners([double.NaN, 0, 1, 1], BoxFormat.Xyxy, out var nan));
        Assert.Contains("finite", nan);
    }

    [Fact]
    public void IoU_is_the_same_in_pixels_and_normalised_units()
    {
        const int width = 320, height = 240;
        double[] a = [32, 24, 160, 120], b = [64, 48, 256, 180];
        static double[] Normalise(double[] box) => [box[0] / width, box[1] / height, box[2] / width, box[3] / height];
        Assert.Equal(BoxMath.IoU(a, b), BoxMath.IoU(Normalise(a), Normalise(b)), 12);
    }
}
