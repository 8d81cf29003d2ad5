namespace Kosmos2.Kernels.Tests;

/// <summary>The product over weights packed in place (<see cref="Bf16Kernels.Pack"/>): accuracy, batch invariance, one order on every ISA.</summary>
public sealed unsafe class PackedLinearTests
{
    /// <summary>
    /// rows × outFeatures × inFeatures: 1 row (12-group tiles, then edges), 2–8 rows (one row tile), 9–17 rows (edge row
    /// tiles), prompt-chunk rows; group counts around the 3- and 12-group tiles; inputs from one pair up; feature counts
    /// past whole groups (the last ones stay stored, as lm_head's last 13 of 65,037); inputs over 2,048 (blocks of at most
    /// 1,024 pairs, the accumulators kept between them: fc2's 8,192).
    /// </summary>
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 16, 2 }, { 1, 208, 64 }, { 1, 400, 130 }, { 3, 48, 34 }, { 8, 64, 128 }, { 9, 80, 66 }, { 17, 32, 300 }, { 71, 96, 64 }, { 2, 3072, 96 },
        { 1, 29, 64 }, { 16, 77, 130 }, { 5, 2037, 64 }, { 12, 48, 4100 }, { 1, 32, 2050 }, { 139, 48, 2052 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Error_stays_within_the_float32_bound_of_one_chain_over_the_inputs(int rows, int outFeatures, int inFeatures)
    {
        var random = new Random(rows * 131 + outFeatures * 7 + inFeatures);
        var x = Bf16.Random(random, rows * inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var bias = Bf16.Random(random, outFeatures);
        // One rounding per product added, then the bias: inFeatures + 1 roundings on the longest path.
        var depth = inFeatures + 1;
        var gamma = depth * Math.Pow(2, -24) / (1 - depth * Math.Pow(2, -24));
        foreach (var isa in Bf16Kernels.Supported)
        {
            var y = Product(new Bf16Kernels(isa), x, rows, w, outFeatures, inFeatures, bias);
            Bf16.AssertProductWithinBound(x, rows, w, outFeatures, inFeatures, bias, y, gamma, isa.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_row_has_the_same_bits_alone_among_rows_on_any_thread_count_and_every_isa_agrees_with_the_portable_path(int rows, int outFeatures, int inFeatures)
    {
        var random = new Random(rows + 3 * outFeatures + inFeatures);
        var x = Bf16.Random(random, rows * inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var bias = Bf16.Random(random, outFeatures);
        var reference = Product(new Bf16Kernels(KernelIsa.Portable, threads: 1), x, rows, w, outFeatures, inFeatures, bias);
        foreach (var isa in Bf16Kernels.Supported)
        {
            foreach (var threads in new[] { 1, Environment.ProcessorCount, 3 })
            {
                var kernels = new Bf16Kernels(isa, threads);
                Assert.True(reference.AsSpan().SequenceEqual(Product(kernels, x, rows, w, outFeatures, inFeatures, bias)),
                    $"{isa} on {threads} thread(s) differs from the portable path");
                var last = rows - 1;
                var alone = Product(kernels, x[(last * inFeatures)..], 1, w, outFeatures, inFeatures, bias);
                Assert.True(reference.AsSpan(last * outFeatures, outFeatures).SequenceEqual(alone), $"{isa} on {threads} thread(s): the last row alone differs");
            }
        }
    }

    [Fact]
    public void Packing_and_unpacking_restores_the_weight_and_unpackable_shapes_are_refused()
    {
        var random = new Random(5);
        var w = Bf16.Random(random, 48 * 70);
        var copy = (ushort[])w.Clone();
        var kernels = Bf16Kernels.Best();
        fixed (ushort* p = copy)
        {
            kernels.Pack(p, 48, 70);
            Assert.False(w.AsSpan().SequenceEqual(copy), "packing left the weight as it was");
            kernels.Pack(p, 48, 70, unpack: true);
        }
        Assert.Equal(w, copy);
        Assert.Equal(32, Bf16Kernels.PackedFeatures(40, 64));
        Assert.False(Bf16Kernels.Packs(15, 64));
        Assert.False(Bf16Kernels.Packs(48, 63));
        fixed (ushort* p = copy)
        {
            var pointer = p;
            Assert.Throws<ArgumentException>(() => kernels.Pack(pointer, 15, 64));
            Assert.Throws<ArgumentException>(() => kernels.Pack(pointer, 48, 63));
        }
    }

    [Theory]
    [InlineData(16, 4)] // one pair per row would be the stored layout already
    [InlineData(40, 64)]
    [InlineData(2037, 66)]
    public void Rows_read_from_a_packed_weight_are_the_stored_rows_and_ids_outside_it_are_refused(int outFeatures, int inFeatures)
    {
        var random = new Random(outFeatures + inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var packed = (ushort[])w.Clone();
        long[] ids = [0, outFeatures - 1, outFeatures / 2, 15, 0, .. Enumerable.Range(0, 40).Select(_ => (long)random.Next(outFeatures))];
        var rows = new ushort[ids.Length * inFeatures];
        fixed (ushort* pw = packed, py = rows)
        {
            Bf16Kernels.Best().Pack(pw, outFeatures, inFeatures);
            Bf16Kernels.PackedRows(pw, outFeatures, inFeatures, ids, py);
            var pointer = pw;
            var output = py;
            Assert.Throws<ArgumentOutOfRangeException>(() => Bf16Kernels.PackedRows(pointer, outFeatures, inFeatures, [outFeatures], output));
            Assert.Throws<ArgumentOutOfRangeException>(() => Bf16Kernels.PackedRows(pointer, outFeatures, inFeatures, [-1], output));
        }
        Assert.False(w.AsSpan().SequenceEqual(packed), "packing left the weight as it was");
        for (var i = 0; i < ids.Length; i++)
        {
            Assert.True(w.AsSpan((int)ids[i] * inFeatures, inFeatures).SequenceEqual(rows.AsSpan(i * inFeatures, inFeatures)), $"row {ids[i]} differs");
        }
    }

    /// <summary>y (float32) of x · wᵀ + bias with w packed for the call and restored after.</summary>
    private static float[] Product(Bf16Kernels kernels, ushort[] x, int rows, ushort[] w, int outFeatures, int inFeatures, ushort[] bias)
    {
        var packed = (ushort[])w.Clone();
        var y = new float[rows * outFeatures];
        fixed (ushort* px = x, pw = packed, pb = bias)
        fixed (float* py = y)
        {
            kernels.Pack(pw, outFeatures, inFeatures);
            kernels.LinearPacked(px, rows, inFeatures, pw, outFeatures, inFeatures, pb, py, outFeatures, yFloat32: true);
        }
        return y;
    }
}
