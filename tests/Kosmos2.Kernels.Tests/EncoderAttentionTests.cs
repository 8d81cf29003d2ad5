namespace Kosmos2.Kernels.Tests;

/// <summary>
/// Unmasked attention of every query of an image over all of that image's keys (the vision encoder's and the
/// projection's): against a float64 softmax, the same bits on every instruction set and thread count, and an image's
/// output independent of the other images in the call.
/// </summary>
public sealed unsafe class EncoderAttentionTests
{
    /// <summary>queries, keys, heads, head size: one key, keys and head sizes short of and past the 16-wide groups, queries ≠ keys.</summary>
    public static TheoryData<int, int, int, int> Shapes() => new()
    {
        { 5, 1, 2, 8 }, { 17, 17, 3, 16 }, { 40, 33, 2, 64 }, { 7, 21, 1, 72 }, { 64, 50, 4, 2 }, { 3, 130, 2, 32 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Output_matches_a_float64_softmax_within_the_bf16_weights_rounding(int queries, int length, int heads, int headDim)
    {
        var random = new Random(queries * 131 + length * 7 + headDim);
        var d = heads * headDim;
        const int Images = 2;
        var q = Bf16.Random(random, Images * queries * d);
        var k = Bf16.Random(random, Images * length * d);
        var v = Bf16.Random(random, Images * length * d);
        var scale = 1 / MathF.Sqrt(headDim);
        foreach (var isa in Bf16Kernels.Supported)
        {
            var output = Run(new Bf16Kernels(isa), q, k, v, Images, queries, length, heads, headDim);
            for (var b = 0; b < Images; b++)
            {
                for (var i = 0; i < queries; i++)
                {
                    for (var h = 0; h < heads; h++)
                    {
                        var scores = Enumerable.Range(0, length).Select(j => scale * Enumerable.Range(0, headDim).Sum(c =>
                            (double)Bf16.ToFloat(q[(b * queries + i) * d + h * headDim + c]) * Bf16.ToFloat(k[(b * length + j) * d + h * headDim + c]))).ToArray();
                        var max = scores.Max();
                        var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                        var sum = weights.Sum();
                        for (var c = 0; c < headDim; c++)
                        {
                            var terms = Enumerable.Range(0, length).Select(j => weights[j] * Bf16.ToFloat(v[(b * length + j) * d + h * headDim + c])).ToArray();
                            var exact = terms.Sum() / sum;
                            var magnitude = terms.Sum(Math.Abs) / sum;
                            var got = Bf16.ToFloat(output[(b * queries + i) * d + h * headDim + c]);
                            // Weights rounded to bf16 (2^-9 each, relative), the output rounded once (2^-9 of itself), float32 below both.
                            Assert.True(Math.Abs(got - exact) <= Math.Pow(2, -8) * (magnitude + Math.Abs(exact)) + 1e-6,
                                $"{isa} image {b} query {i} head {h} dim {c}: {got} vs {exact}");
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void An_image_has_the_same_bits_alone_and_among_images_on_every_isa_and_thread_count(int queries, int length, int heads, int headDim)
    {
        var random = new Random(queries * 17 + length * 3 + headDim);
        var d = heads * headDim;
        const int Images = 3;
        var q = Bf16.Random(random, Images * queries * d);
        var k = Bf16.Random(random, Images * length * d);
        var v = Bf16.Random(random, Images * length * d);
        var reference = Run(new Bf16Kernels(KernelIsa.Portable, threads: 1), q, k, v, Images, queries, length, heads, headDim);
        foreach (var isa in Bf16Kernels.Supported)
        {
            foreach (var threads in new[] { 1, Environment.ProcessorCount })
            {
                var kernels = new Bf16Kernels(isa, threads);
                Assert.Equal(reference, Run(kernels, q, k, v, Images, queries, length, heads, headDim));
                for (var b = 0; b < Images; b++)
                {
                    var alone = Run(kernels, q[(b * queries * d)..((b + 1) * queries * d)], k[(b * length * d)..((b + 1) * length * d)],
                        v[(b * length * d)..((b + 1) * length * d)], 1, queries, length, heads, headDim);
                    Assert.Equal(reference[(b * queries * d)..((b + 1) * queries * d)], alone);
                }
            }
        }
    }

    [Fact]
    public void An_odd_head_size_is_refused()
    {
        Assert.False(Bf16Kernels.EncoderAttentionTakes(7));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(Bf16Kernels.Best(), new ushort[14], new ushort[14], new ushort[14], 1, 1, 1, 2, 7));
    }

    private static ushort[] Run(Bf16Kernels kernels, ushort[] q, ushort[] k, ushort[] v, int images, int queries, int length, int heads, int headDim)
    {
        var d = heads * headDim;
        var output = new ushort[images * queries * d];
        fixed (ushort* pq = q, pk = k, pv = v, po = output)
        {
            kernels.EncoderAttention(pq, d, pk, pv, d, images, queries, length, heads, headDim, 1 / MathF.Sqrt(headDim), po, d);
        }
        return output;
    }
}
