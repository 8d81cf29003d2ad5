using Xunit.Abstractions;

namespace Kosmos2.Kernels.Tests;

/// <summary>The bf16 product against a float64 reference, and its batch invariance (same bits for a row however it is batched).</summary>
public sealed class LinearTests(ITestOutputHelper output)
{
    /// <summary>
    /// rows × outFeatures × inFeatures: odd sizes, K tails of every kind, edge tiles in both directions (6-feature tiles,
    /// and the 12-feature tiles of 1–2 rows), prompt-chunk rows, several K blocks (sized from the L1: 2,048 on a 48 KiB
    /// L1, 1,280 on 32 KiB) and row blocks.
    /// </summary>
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 3, 7, 5 }, { 4, 6, 32 }, { 5, 13, 33 }, { 9, 50, 100 }, { 17, 97, 257 }, { 2, 301, 2048 }, { 1, 25, 95 }, { 2, 37, 4160 }, { 71, 200, 300 }, { 71, 67, 130 }, { 128, 20, 63 }, { 7, 19, 2500 }, { 67, 13, 4100 },
    };

    /// <summary>Every instruction set this CPU runs (the portable one always).</summary>
    public static IEnumerable<KernelIsa> Isas() => Bf16Kernels.Supported;

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Error_stays_within_the_float32_accumulation_bound(int rows, int outFeatures, int inFeatures)
    {
        var random = new Random(rows * 7919 + outFeatures * 31 + inFeatures);
        var x = Bf16.Random(random, rows * inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var bias = Bf16.Random(random, outFeatures);
        // Each lane adds 2 products per 32-wide chunk, then 4 folds and the bias: at most d roundings on any path.
        var depth = 2 * ((inFeatures + 31) / 32) + 5;
        var gamma = depth * Math.Pow(2, -24) / (1 - depth * Math.Pow(2, -24));
        foreach (var isa in Isas())
        {
            var y = new float[rows * outFeatures];
            new Bf16Kernels(isa).Linear(x, rows, w, outFeatures, bias, y);
            var worst = Bf16.AssertProductWithinBound(x, rows, w, outFeatures, inFeatures, bias, y, gamma, isa.ToString());
            output.WriteLine($"{isa}: worst error {worst:P1} of the bound");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_row_has_the_same_bits_alone_and_among_other_rows_at_any_position_and_thread_count(int rows, int outFeatures, int inFeatures)
    {
        var random = new Random(rows + outFeatures + inFeatures);
        var x = Bf16.Random(random, rows * inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var bias = Bf16.Random(random, outFeatures);
        var threadCounts = new[] { 1, Environment.ProcessorCount, 3 };
        foreach (var isa in Isas())
        {
            var batched = new ushort[rows * outFeatures];
            new Bf16Kernels(isa, Environment.ProcessorCount).Linear(x, rows, w, outFeatures, bias, batched);
            for (var m = 0; m < rows; m++)
            {
                var row = x.AsSpan(m * inFeatures, inFeatures);
                var expected = batched.AsSpan(m * outFeatures, outFeatures);
                foreach (var threads in threadCounts)
                {
                    var alone = new ushort[outFeatures];
                    new Bf16Kernels(isa, threads).Linear(row, 1, w, outFeatures, bias, alone);
                    Assert.True(expected.SequenceEqual(alone), $"{isa}: row {m} alone on {threads} thread(s) differs from the row among {rows}");

                    // Among 5 other rows at a position that moves with the row (first, middle, last tile positions).
                    var position = m % 6;
                    var mixed = Bf16.Random(random, 6 * inFeatures);
                    row.CopyTo(mixed.AsSpan(position * inFeatures));
                    var among = new ushort[6 * outFeatures];
                    new Bf16Kernels(isa, threads).Linear(mixed, 6, w, outFeatures, bias, among);
                    Assert.True(expected.SequenceEqual(among.AsSpan(position * outFeatures, outFeatures)),
                        $"{isa}: row {m} at position {position} of 6 on {threads} thread(s) differs");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_portable_path_reproduces_the_vector_path_bit_for_bit(int rows, int outFeatures, int inFeatures)
    {
        var random = new Random(3 * rows + outFeatures + inFeatures);
        var x = Bf16.Random(random, rows * inFeatures);
        var w = Bf16.Random(random, outFeatures * inFeatures);
        var portable = new float[rows * outFeatures];
        new Bf16Kernels(KernelIsa.Portable).Linear(x, rows, w, outFeatures, [], portable);
        output.WriteLine($"instruction sets here: {string.Join(", ", Bf16Kernels.Supported)}");
        foreach (var isa in Bf16Kernels.Supported)
        {
            var vector = new float[rows * outFeatures];
            new Bf16Kernels(isa).Linear(x, rows, w, outFeatures, [], vector);
            Assert.True(portable.AsSpan().SequenceEqual(vector), $"{isa} differs from the portable path");
        }
    }

    [Fact]
    public async Task Calls_from_several_threads_at_once_each_get_the_same_bits_as_alone()
    {
        // The kernels' worker team serves one call at a time; a call arriving meanwhile runs on its own thread.
        var random = new Random(11);
        const int Rows = 9, OutFeatures = 700, InFeatures = 300;
        var w = Bf16.Random(random, OutFeatures * InFeatures);
        var inputs = Enumerable.Range(0, 6).Select(_ => Bf16.Random(random, Rows * InFeatures)).ToArray();
        var kernels = Bf16Kernels.Best(Environment.ProcessorCount);
        var expected = inputs.Select(x =>
        {
            var y = new ushort[Rows * OutFeatures];
            kernels.Linear(x, Rows, w, OutFeatures, [], y);
            return y;
        }).ToArray();
        for (var round = 0; round < 20; round++)
        {
            var results = await Task.WhenAll(inputs.Select(x => Task.Run(() =>
            {
                var y = new ushort[Rows * OutFeatures];
                kernels.Linear(x, Rows, w, OutFeatures, [], y);
                return y;
            })));
            for (var i = 0; i < inputs.Length; i++)
            {
                Assert.True(expected[i].AsSpan().SequenceEqual(results[i]), $"round {round}: call {i} differs from the same call alone");
            }
        }
    }

    [Fact]
    public void Shapes_that_disagree_are_refused()
    {
        var kernels = Bf16Kernels.Best();
        Assert.Throws<ArgumentException>(() => kernels.Linear(new ushort[6], 2, new ushort[4], 2, [], new ushort[4]));
        Assert.Throws<ArgumentException>(() => kernels.Linear(new ushort[6], 2, new ushort[6], 2, new ushort[3], new ushort[4]));
        Assert.Throws<ArgumentException>(() => kernels.Linear(new ushort[6], 2, new ushort[6], 2, [], new ushort[5]));
    }
}
