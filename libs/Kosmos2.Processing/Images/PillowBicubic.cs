namespace Kosmos2.Processing.Images;

/// <summary>
/// Pillow's <c>Image.resize(size, BICUBIC)</c> for 8-bit RGB, bit for bit (KOSMOS2_SPEC.md §6; Pillow's
/// <c>Resample.c</c>): separable, horizontal pass first into an 8-bit intermediate, antialiased support when
/// shrinking, 22-bit fixed-point weights. Skia/ImageSharp bicubic filters give different pixels, so the reference's
/// algorithm is reproduced here. Weights are computed once per axis; the inner loops are integer-only
/// (640×480 → 224×224 runs in about 2 ms on one core here).
/// </summary>
public static class PillowBicubic
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double BicubicSupport = 2.0;

    /// <summary>Resizes row-major HWC RGB; returns a new <paramref name="outWidth"/>×<paramref name="outHeight"/>×3 buffer.</summary>
    public static byte[] Resize(ReadOnlySpan<byte> rgb, int width, int height, int outWidth, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        // Sizes in long: width·height·3 overflows int from 716 M pixels on.
        var expected = (long)width * height * 3;
        if (rgb.Length != expected)
        {
            throw new ArgumentException($"rgb holds {rgb.Length} bytes; {width}×{height}×3 = {expected} expected.", nameof(rgb));
        }
        var output = new byte[ArrayLength((long)outWidth * outHeight * 3, "output", width, height, outWidth, outHeight)];
        Resize(rgb, width, height, output, outWidth, outHeight);
        return output;
    }

    /// <summary>Resizes into <paramref name="destination"/> (outWidth·outHeight·3 bytes).</summary>
    public static void Resize(ReadOnlySpan<byte> rgb, int width, int height, Span<byte> destination, int outWidth, int outHeight)
    {
        var needHorizontal = outWidth != width;
        var needVertical = outHeight != height;
        if (!needHorizontal && !needVertical)
        {
            rgb.CopyTo(destination);
            return;
        }

        var vertical = needVertical ? AxisWeights.Create(height, outHeight) : null;
        if (!needHorizontal)
        {
            ResampleVertical(rgb, width, destination, outHeight, vertical!, 0);
            return;
        }

        var horizontal = AxisWeights.Create(width, outWidth);
        if (!needVertical)
        {
            ResampleHorizontal(rgb, width, destination, outWidth, 0, height, horizontal);
            return;
        }

        // As Pillow: the horizontal pass only covers the source rows the vertical pass reads.
        var firstRow = vertical!.Bounds[0];
        var lastRow = vertical.Bounds[(outHeight - 1) * 2] + vertical.Bounds[(outHeight - 1) * 2 + 1];
        // outWidth·rows·3 overflowed int for rows over 3.2 M at outWidth 224 (a narrow, very tall image).
        var temp = new byte[ArrayLength((long)outWidth * (lastRow - firstRow) * 3, "intermediate", width, height, outWidth, outHeight)];
        ResampleHorizontal(rgb, width, temp, outWidth, firstRow, lastRow - firstRow, horizontal);
        ResampleVertical(temp, outWidth, destination, outHeight, vertical, firstRow);
    }

    /// <summary>
    /// Bytes of the horizontal pass's intermediate for a resize that needs both passes (0 otherwise): outWidth × the
    /// source rows the vertical pass reads × 3, in long so that no size overflows.
    /// </summary>
    public static long IntermediateBytes(int width, int height, int outWidth, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        if (outWidth == width || outHeight == height)
        {
            return 0;
        }
        var vertical = AxisWeights.Create(height, outHeight);
        var firstRow = vertical.Bounds[0];
        var lastRow = vertical.Bounds[(outHeight - 1) * 2] + vertical.Bounds[(outHeight - 1) * 2 + 1];
        return (long)outWidth * (lastRow - firstRow) * 3;
    }

    private static int ArrayLength(long bytes, string what, int width, int height, int outWidth, int outHeight) =>
        bytes <= Array.MaxLength
            ? (int)bytes
            : throw new ArgumentException(
                $"resizing {width}×{height} to {outWidth}×{outHeight} needs a {bytes}-byte {what} buffer, more than one array holds ({Array.MaxLength}).");

    private static void ResampleHorizontal(
        ReadOnlySpan<byte> src, int inWidth, Span<byte> dst, int outWidth, int firstRow, int rows, AxisWeights w)
    {
        var inStride = inWidth * 3;
        var outStride = outWidth * 3;
        var bounds = w.Bounds;
        var coeffs = w.Coefficients;
        var ksize = w.KernelSize;
        for (var y = 0; y < rows; y++)
        {
            var inRow = src.Slice((y + firstRow) * inStride, inStride);
            var outRow = dst.Slice(y * outStride, outStride);
            for (var xx = 0; xx < outWidth; xx++)
            {
                var xmin = bounds[xx * 2];
                var count = bounds[xx * 2 + 1];
                var k = coeffs.AsSpan(xx * ksize, count);
                var pixels = inRow.Slice(xmin * 3, count * 3);
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                for (var x = 0; x < k.Length; x++)
                {
                    var kx = k[x];
                    s0 += pixels[x * 3] * kx;
                    s1 += pixels[x * 3 + 1] * kx;
                    s2 += pixels[x * 3 + 2] * kx;
                }
                outRow[xx * 3] = Clip8(s0);
                outRow[xx * 3 + 1] = Clip8(s1);
                outRow[xx * 3 + 2] = Clip8(s2);
            }
        }
    }

    private static void ResampleVertical(
        ReadOnlySpan<byte> src, int width, Span<byte> dst, int outHeight, AxisWeights w, int rowOffset)
    {
        var stride = width * 3;
        var bounds = w.Bounds;
        var coeffs = w.Coefficients;
        var ksize = w.KernelSize;
        for (var yy = 0; yy < outHeight; yy++)
        {
            var ymin = bounds[yy * 2] - rowOffset;
            var count = bounds[yy * 2 + 1];
            var k = coeffs.AsSpan(yy * ksize, count);
            var outRow = dst.Slice(yy * stride, stride);
            // Row-outer accumulation keeps memory access sequential; the sums are the same integers as Pillow's.
            for (var i = 0; i < stride; i++)
            {
                var s = 1 << (PrecisionBits - 1);
                var p = (ymin * stride) + i;
                for (var y = 0; y < k.Length; y++)
                {
                    s += src[p] * k[y];
                    p += stride;
                }
                outRow[i] = Clip8(s);
            }
        }
    }

    private static byte Clip8(int v)
    {
        if (v >= 1 << PrecisionBits << 8)
        {
            return 255;
        }
        return v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);
    }

    private static double Filter(double x)
    {
        const double a = -0.5;
        if (x < 0.0)
        {
            x = -x;
        }
        if (x < 1.0)
        {
            return (((a + 2.0) * x) - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0)
        {
            return ((((x - 5) * x) + 8) * x - 4) * a;
        }
        return 0.0;
    }

    /// <summary>Pillow's <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c> for one axis.</summary>
    private sealed class AxisWeights
    {
        private AxisWeights(int[] bounds, int[] coefficients, int kernelSize)
        {
            Bounds = bounds;
            Coefficients = coefficients;
            KernelSize = kernelSize;
        }

        /// <summary>Per output index: first input index, number of taps.</summary>
        public int[] Bounds { get; }

        /// <summary>[outSize, KernelSize] fixed-point weights.</summary>
        public int[] Coefficients { get; }

        public int KernelSize { get; }

        public static AxisWeights Create(int inSize, int outSize)
        {
            // Pillow computes (in1 - in0) in float for the box; exact for any int size here.
            var scale = (double)(float)inSize / outSize;
            var filterScale = Math.Max(scale, 1.0);
            var support = BicubicSupport * filterScale;
            var ksize = ((int)Math.Ceiling(support) * 2) + 1;
            var bounds = new int[outSize * 2];
            var coefficients = new int[outSize * ksize];
            var k = new double[ksize];
            var ss = 1.0 / filterScale;
            for (var xx = 0; xx < outSize; xx++)
            {
                var center = (xx + 0.5) * scale;
                var xmin = (int)(center - support + 0.5);
                if (xmin < 0)
                {
                    xmin = 0;
                }
                var xmax = (int)(center + support + 0.5);
                if (xmax > inSize)
                {
                    xmax = inSize;
                }
                xmax -= xmin;
                var ww = 0.0;
                for (var x = 0; x < xmax; x++)
                {
                    var w = Filter((x + xmin - center + 0.5) * ss);
                    k[x] = w;
                    ww += w;
                }
                for (var x = 0; x < xmax; x++)
                {
                    var w = ww != 0.0 ? k[x] / ww : k[x];
                    coefficients[(xx * ksize) + x] = w < 0
                        ? (int)(-0.5 + (w * (1 << PrecisionBits)))
                        : (int)(0.5 + (w * (1 << PrecisionBits)));
                }
                bounds[xx * 2] = xmin;
                bounds[(xx * 2) + 1] = xmax;
            }
            return new AxisWeights(bounds, coefficients, ksize);
        }
    }
}
