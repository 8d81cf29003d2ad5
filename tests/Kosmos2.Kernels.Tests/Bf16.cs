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
}
