namespace Kosmos2.Processing.Grounding;

/// <summary>
/// Boxes ↔ Kosmos-2 patch-index pairs on a 32×32 grid (KOSMOS2_SPEC.md §9; HF <c>coordinate_to_patch_index</c> and
/// <c>patch_index_to_coordinate</c>). Decoding does not invert encoding: it returns cell centres, or cell edges when
/// both indices share a cell, a row or a column.
/// </summary>
public static class PatchIndexCodec
{
    public const int PatchesPerSide = 32;

    /// <summary>Patch-index tokens: <c>&lt;patch_index_0000&gt;</c> … <c>&lt;patch_index_1023&gt;</c>.</summary>
    public const int PatchCount = PatchesPerSide * PatchesPerSide;

    /// <summary>True when the reference would accept the box (<c>x2 &gt; x1</c> and <c>y2 &gt; y1</c>; NaN fails).</summary>
    public static bool IsOrdered(NormalizedBox box) => box.X2 > box.X1 && box.Y2 > box.Y1;

    /// <summary>Upper-left and lower-right patch indices: <c>floor(v·n)</c> for the corner, <c>ceil(v·n − 1)</c> for the far corner.</summary>
    /// <exception cref="ArgumentException">the box is not ordered, as in the reference.</exception>
    public static (int Ul, int Lr) Encode(NormalizedBox box, int patchesPerSide = PatchesPerSide)
    {
        if (!IsOrdered(box))
        {
            throw new ArgumentException("The coordinates in `bbox` should be `(x1, y1, x2, y2)` with `x2 > x1` and `y2 > y1`.", nameof(box));
        }
        var n = (double)patchesPerSide;
        var ulX = (int)Math.Floor(box.X1 * n);
        var ulY = (int)Math.Floor(box.Y1 * n);
        var lrX = (int)Math.Ceiling((box.X2 * n) - 1);
        var lrY = (int)Math.Ceiling((box.Y2 * n) - 1);
        return ((ulY * patchesPerSide) + ulX, (lrY * patchesPerSide) + lrX);
    }

    /// <summary>
    /// The box the model means by a patch-index pair. No validation, as in the reference: <c>lr &lt; ul</c> gives
    /// <c>x2 &lt; x1</c>, indices beyond the grid give coordinates beyond 1.
    /// </summary>
    public static NormalizedBox Decode(int ul, int lr, int patchesPerSide = PatchesPerSide)
    {
        var cell = 1.0 / patchesPerSide;
        // Python's divmod floors; for the (unvalidated) negative case this keeps the reference's numbers.
        var ulX = FloorMod(ul, patchesPerSide);
        var ulY = FloorDiv(ul, patchesPerSide);
        var lrX = FloorMod(lr, patchesPerSide);
        var lrY = FloorDiv(lr, patchesPerSide);
        if (ul == lr || ulX == lrX || ulY == lrY)
        {
            return new NormalizedBox(ulX * cell, ulY * cell, (lrX * cell) + cell, (lrY * cell) + cell);
        }
        var half = cell / 2;
        return new NormalizedBox((ulX * cell) + half, (ulY * cell) + half, (lrX * cell) + half, (lrY * cell) + half);
    }

    /// <summary>Pixels of a <paramref name="width"/>×<paramref name="height"/> image → normalised coordinates.</summary>
    public static NormalizedBox Normalize(PixelBox box, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        return new NormalizedBox(box.X1 / width, box.Y1 / height, box.X2 / width, box.Y2 / height);
    }

    /// <summary>Normalised coordinates → pixels of a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    public static PixelBox ToPixels(NormalizedBox box, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        return new PixelBox(box.X1 * width, box.Y1 * height, box.X2 * width, box.Y2 * height);
    }

    /// <summary>The token text of one patch index, zero-padded to four digits like the processor writes it.</summary>
    public static string TokenText(int index) =>
        "<patch_index_" + index.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + ">";

    private static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);

    private static int FloorMod(int a, int b) => a - (FloorDiv(a, b) * b);
}
