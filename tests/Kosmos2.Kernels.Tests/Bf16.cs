namespace Kosmos2.Kernels.Tests;

/// <summary>bfloat16 bits for tests: random values over several binades, and conversion to float.</summary>
internal static class Bf16
{
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Round to nearest even (as torch and the kernels).</summary>
    public static ushort FromFloat(float value)
    {
        var bits = (uint)BitConverter.SingleToInt32Bits(value);
        bits += 0x7fffu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }

    /// <summary>Values in ±[2⁻⁶, 2²): normal numbers of mixed sign and magnitude (no denormals, which the instruction flushes).</summary>
    public static ushort[] Random(Random random, int count)
    {
        var values = new ushort[count];
        for (var i = 0; i < count; i++)
        {
            var magnitude = (float)(random.NextDouble() + 0.5) * MathF.Pow(2, random.Next(-6, 1));
            values[i] = FromFloat(random.Next(2) == 0 ? magnitude : -magnitude);
        }
        return values;
    }

    /// <summary>
    /// Asserts that y [rows, outFeatures] = x · wᵀ + bias within <paramref name="gamma"/> × the sum of the terms'
    /// magnitudes (the float32 accumulation bound of a path of that depth), against float64; returns the worst error as a
    /// fraction of the bound.
    /// </summary>
    public static double AssertProductWithinBound(ushort[] x, int rows, ushort[] w, int outFeatures, int inFeatures, ushort[] bias, float[] y,
        double gamma, string label)
    {
        var worst = 0.0;
        for (var m = 0; m < rows; m++)
        {
            for (var n = 0; n < outFeatures; n++)
            {
                double exact = ToFloat(bias[n]), magnitude = Math.Abs(exact);
                for (var k = 0; k < inFeatures; k++)
                {
                    var product = (double)ToFloat(x[m * inFeatures + k]) * ToFloat(w[n * inFeatures + k]);
                    exact += product;
                    magnitude += Math.Abs(product);
                }
                var error = Math.Abs(y[m * outFeatures + n] - exact);
                Assert.True(error <= gamma * magnitude, $"{label} y[{m}, {n}] = {y[m * outFeatures + n]}, exact {exact}: error {error:E3} over the bound {gamma * magnitude:E3}");
                worst = Math.Max(worst, error / (gamma * magnitude));
            }
        }
        return worst;
    }
}
