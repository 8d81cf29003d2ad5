namespace Kosmos2.Kernels.Tests;

/// <summary>The decoder's row work on the native kernels: LayerNorm and the residual add, against float64 and torch's rounding.</summary>
public sealed unsafe class RowOpsTests
{
    /// <summary>rows × width: widths below, at and past the 16-value lanes, odd tails, and enough values to split over threads.</summary>
    public static TheoryData<int, int> Shapes() => new() { { 1, 1 }, { 1, 15 }, { 3, 16 }, { 2, 33 }, { 5, 2048 }, { 16, 8192 }, { 7, 4099 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LayerNorm_is_within_one_bf16_rounding_of_float64_on_every_isa(int rows, int width)
    {
        var random = new Random(rows * 31 + width);
        var x = Bf16.Random(random, rows * width);
        var gamma = Bf16.Random(random, width);
        var beta = Bf16.Random(random, width);
        const float eps = 1e-5f;
        foreach (var isa in Bf16Kernels.Supported)
        {
            var y = LayerNorm(new Bf16Kernels(isa), x, rows, width, gamma, beta, eps);
            for (var m = 0; m < rows; m++)
            {
                double mean = 0, variance = 0;
                for (var i = 0; i < width; i++)
                {
                    mean += Bf16.ToFloat(x[m * width + i]);
                }
                mean /= width;
                for (var i = 0; i < width; i++)
                {
                    var d = Bf16.ToFloat(x[m * width + i]) - mean;
                    variance += d * d;
                }
                var rstd = 1 / Math.Sqrt(variance / width + eps);
                for (var i = 0; i < width; i++)
                {
                    var exact = (Bf16.ToFloat(x[m * width + i]) - mean) * rstd * Bf16.ToFloat(gamma[i]) + Bf16.ToFloat(beta[i]);
                    var got = Bf16.ToFloat(y[m * width + i]);
                    // One rounding to bf16 (2^-9 relative) plus float32 arithmetic's few ulps, on the larger of the terms.
                    var scale = Math.Abs((Bf16.ToFloat(x[m * width + i]) - mean) * rstd * Bf16.ToFloat(gamma[i])) + Math.Abs(Bf16.ToFloat(beta[i]));
                    Assert.True(Math.Abs(got - exact) <= Math.Pow(2, -8) * scale + 1e-30,
                        $"{isa} row {m} [{i}]: {got} against {exact}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LayerNorm_of_a_row_has_the_same_bits_alone_among_rows_in_place_on_every_isa_and_thread_count(int rows, int width)
    {
        var random = new Random(rows * 17 + width);
        var x = Bf16.Random(random, rows * width);
        var gamma = Bf16.Random(random, width);
        var beta = Bf16.Random(random, width);
        var reference = LayerNorm(new Bf16Kernels(KernelIsa.Portable, threads: 1), x, rows, width, gamma, beta, 1e-5f);
        foreach (var isa in Bf16Kernels.Supported)
        {
            foreach (var threads in new[] { 1, Environment.ProcessorCount })
            {
                var kernels = new Bf16Kernels(isa, threads);
                Assert.Equal(reference, LayerNorm(kernels, x, rows, width, gamma, beta, 1e-5f));
                var last = rows - 1;
                var alone = LayerNorm(kernels, x[(last * width)..], 1, width, gamma, beta, 1e-5f);
                Assert.Equal(reference[(last * width)..], alone);
                var inPlace = (ushort[])x.Clone();
                fixed (ushort* p = inPlace, g = gamma, b = beta)
                {
                    kernels.LayerNorm(p, rows, width, width, g, b, 1e-5f, p, width);
                }
                Assert.Equal(reference, inPlace);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2048)]
    [InlineData(16 * 8192 + 3)]
    public void Add_rounds_the_float32_sum_to_nearest_even_as_torch_on_every_isa_and_thread_count(int count)
    {
        var random = new Random(count);
        var a = Bf16.Random(random, count);
        var b = Bf16.Random(random, count);
        var expected = new ushort[count];
        for (var i = 0; i < count; i++)
        {
            expected[i] = Bf16.FromFloat(Bf16.ToFloat(a[i]) + Bf16.ToFloat(b[i]));
        }
        foreach (var isa in Bf16Kernels.Supported)
        {
            foreach (var threads in new[] { 1, Environment.ProcessorCount })
            {
                var y = (ushort[])a.Clone();
                fixed (ushort* py = y, pb = b)
                {
                    new Bf16Kernels(isa, threads).Add(py, pb, py, count);
                }
                Assert.Equal(expected, y);
            }
        }
    }

    [Fact]
    public void QuickGelu_gives_every_bf16_value_the_same_bits_on_every_isa_and_thread_count_within_a_step_of_torchs_roundings()
    {
        // Every bf16 bit pattern (normal, denormal, zero, infinite, NaN), twice over so the call splits over threads.
        var x = Enumerable.Range(0, 2 * 65536).Select(i => (ushort)i).ToArray();
        var reference = QuickGelu(new Bf16Kernels(KernelIsa.Portable, threads: 1), x);
        foreach (var isa in Bf16Kernels.Supported)
        {
            foreach (var threads in new[] { 1, Environment.ProcessorCount })
            {
                Assert.Equal(reference, QuickGelu(new Bf16Kernels(isa, threads), x));
            }
        }
        var exactSteps = 0;
        for (var i = 0; i < 65536; i++)
        {
            // libtorch on a bf16 tensor: t = bf16(x * 1.702f), s = bf16(1 / (1 + exp(-t))) in float32 (exp overflowing to
            // infinity past 88.72, so s = 0 there), y = bf16(x * s); here exp in float64, rounded to float32.
            var value = Bf16.ToFloat((ushort)i);
            var t = Bf16.ToFloat(Bf16.FromFloat(value * 1.702f));
            var sigmoid = Bf16.ToFloat(Bf16.FromFloat(1f / (1f + (float)Math.Exp(-(double)t))));
            var expected = Bf16.ToFloat(Bf16.FromFloat(value * sigmoid));
            var got = Bf16.ToFloat(reference[i]);
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(got), $"quick_gelu({value}) = {got}, NaN expected");
                continue;
            }
            // The kernels' exp is within an ulp or two of float64's: the sigmoid may land one bf16 step away near a rounding boundary.
            Assert.True(got == expected || Math.Abs(got - expected) <= Math.Abs(expected) * Math.Pow(2, -7), $"quick_gelu({value}) = {got}, {expected} expected");
            exactSteps += got == expected ? 1 : 0;
        }
        Assert.True(exactSteps >= 65536 * 99 / 100, $"only {exactSteps} of 65,536 values equal torch's roundings exactly");
    }

    private static ushort[] QuickGelu(Bf16Kernels kernels, ushort[] x)
    {
        var y = new ushort[x.Length];
        fixed (ushort* px = x, py = y)
        {
            kernels.QuickGelu(px, py, x.Length);
        }
        return y;
    }

    private static ushort[] LayerNorm(Bf16Kernels kernels, ushort[] x, int rows, int width, ushort[] gamma, ushort[] beta, float eps)
    {
        var y = new ushort[rows * width];
        fixed (ushort* px = x, py = y, g = gamma, b = beta)
        {
            kernels.LayerNorm(px, rows, width, width, g, b, eps, py, width);
        }
        return y;
    }
}
