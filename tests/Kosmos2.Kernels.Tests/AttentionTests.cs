namespace Kosmos2.Kernels.Tests;

/// <summary>Per-token attention over the token's own keys: against a float64 softmax, and invariant to what runs beside it.</summary>
public sealed unsafe class AttentionTests
{
    private const int Heads = 3;
    private const int HeadDim = 64;
    private const int MaxLength = 40;
    private const int Slots = 4;
    private const long HeadStride = (long)MaxLength * HeadDim;
    private const long SlotStride = Heads * HeadStride;
    private static readonly float Scale = 1 / MathF.Sqrt(HeadDim);

    public static IEnumerable<KernelIsa> Isas() => LinearTests.Isas();

    /// <summary>Query magnitudes: ordinary scores, and scores hundreds apart (weights that underflow to 0 in the exp).</summary>
    public static TheoryData<float> QueryScales() => new() { 1f, 256f };

    [Theory]
    [MemberData(nameof(QueryScales))]
    public void Output_matches_a_float64_softmax_within_bf16_rounding(float queryScale)
    {
        var random = new Random(5);
        var (keys, values) = Cache(random);
        var q = Query(random, Heads * HeadDim, queryScale);
        foreach (var isa in Isas())
        {
            foreach (var length in new[] { 1, 2, 17, MaxLength })
            {
                var output = Run(new Bf16Kernels(isa), q, keys, values, [2], [length]);
                for (var h = 0; h < Heads; h++)
                {
                    var scores = Enumerable.Range(0, length).Select(j => Scale * Enumerable.Range(0, HeadDim).Sum(d =>
                        (double)Bf16.ToFloat(q[h * HeadDim + d]) * Bf16.ToFloat(keys[2 * SlotStride + h * HeadStride + j * HeadDim + d]))).ToArray();
                    var max = scores.Max();
                    var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                    var sum = weights.Sum();
                    for (var d = 0; d < HeadDim; d++)
                    {
                        var exact = Enumerable.Range(0, length).Sum(j => weights[j] * Bf16.ToFloat(values[2 * SlotStride + h * HeadStride + j * HeadDim + d])) / sum;
                        var got = Bf16.ToFloat(output[h * HeadDim + d]);
                        // bf16 output: half a unit in the 8th bit, plus float32 softmax error well below it.
                        Assert.True(Math.Abs(got - exact) <= Math.Abs(exact) * Math.Pow(2, -8) + 1e-4, $"{isa} length {length} head {h} dim {d}: {got} vs {exact}");
                    }
                }
            }
        }
    }

    [Fact]
    public void A_token_has_the_same_bits_alone_and_among_tokens_of_other_lengths_and_never_reads_past_its_keys()
    {
        var random = new Random(9);
        var (keys, values) = Cache(random);
        int[] slots = [3, 0, 2, 1, 2];
        int[] lengths = [7, MaxLength, 1, 23, 30];
        var q = Bf16.Random(random, slots.Length * Heads * HeadDim);
        foreach (var isa in Isas())
        {
            var together = Run(new Bf16Kernels(isa, Environment.ProcessorCount), q, keys, values, slots, lengths);
            for (var t = 0; t < slots.Length; t++)
            {
                // Alone, on one thread, with every key past the token's length replaced by NaN.
                var (poisonedKeys, poisonedValues) = (keys.ToArray(), values.ToArray());
                for (var h = 0; h < Heads; h++)
                {
                    var from = slots[t] * SlotStride + h * HeadStride + (long)lengths[t] * HeadDim;
                    poisonedKeys.AsSpan((int)from, (int)(HeadStride - lengths[t] * HeadDim)).Fill(0x7fc0);
                    poisonedValues.AsSpan((int)from, (int)(HeadStride - lengths[t] * HeadDim)).Fill(0x7fc0);
                }
                var alone = Run(new Bf16Kernels(isa, 1), q.AsSpan(t * Heads * HeadDim, Heads * HeadDim).ToArray(), poisonedKeys, poisonedValues, [slots[t]], [lengths[t]]);
                Assert.True(together.AsSpan(t * Heads * HeadDim, Heads * HeadDim).SequenceEqual(alone), $"{isa}: token {t} differs alone");
            }
        }
    }

    [Theory]
    [MemberData(nameof(QueryScales))]
    public void The_portable_path_reproduces_the_vector_path_bit_for_bit(float queryScale)
    {
        var random = new Random(11);
        var (keys, values) = Cache(random);
        var q = Query(random, 2 * Heads * HeadDim, queryScale);
        var portable = Run(new Bf16Kernels(KernelIsa.Portable), q, keys, values, [1, 3], [MaxLength, 5]);
        foreach (var isa in Bf16Kernels.Supported)
        {
            Assert.True(portable.AsSpan().SequenceEqual(Run(new Bf16Kernels(isa), q, keys, values, [1, 3], [MaxLength, 5])), $"{isa} differs from the portable path");
        }
    }

    [Fact]
    public void A_call_large_enough_to_split_over_threads_gives_each_token_its_bits_alone()
    {
        // 16 heads and up to 160 keys: over a million multiply-adds, so the call is split across the kernel threads
        // (the small cases above run on the calling thread alone).
        const int BigHeads = 16, BigMaxLength = 160;
        const long BigHeadStride = (long)BigMaxLength * HeadDim, BigSlotStride = BigHeads * BigHeadStride;
        int[] lengths = [160, 33, 97, 1, 128, 150];
        int[] slots = [5, 0, 3, 1, 2, 4];
        var random = new Random(5);
        var keys = Bf16.Random(random, (int)(6 * BigSlotStride));
        var values = Bf16.Random(random, (int)(6 * BigSlotStride));
        var q = Bf16.Random(random, lengths.Length * BigHeads * HeadDim);
        ushort[] Attend(Bf16Kernels kernels, ushort[] queries, int[] tokenSlots, int[] tokenLengths)
        {
            var output = new ushort[tokenSlots.Length * BigHeads * HeadDim];
            fixed (ushort* pq = queries, pk = keys, pv = values, po = output)
            {
                kernels.Attention(pq, BigHeads * HeadDim, pk, pv, BigSlotStride, BigHeadStride, BigHeads, HeadDim, tokenSlots, tokenLengths, Scale, po,
                    BigHeads * HeadDim);
            }
            return output;
        }
        foreach (var isa in Bf16Kernels.Supported.Where(i => i != KernelIsa.Portable))
        {
            var together = Attend(new Bf16Kernels(isa, Environment.ProcessorCount), q, slots, lengths);
            for (var t = 0; t < lengths.Length; t++)
            {
                var alone = Attend(new Bf16Kernels(isa, 1), q.AsSpan(t * BigHeads * HeadDim, BigHeads * HeadDim).ToArray(), [slots[t]], [lengths[t]]);
                Assert.True(alone.AsSpan().SequenceEqual(together.AsSpan(t * BigHeads * HeadDim, BigHeads * HeadDim)),
                    $"{isa}: token {t} alone differs from the same token in a call split across threads");
            }
        }
    }

    private static ushort[] Query(Random random, int count, float scale) =>
        [.. Bf16.Random(random, count).Select(v => Bf16.FromFloat(Bf16.ToFloat(v) * scale))];

    private static (ushort[] Keys, ushort[] Values) Cache(Random random) =>
        (Bf16.Random(random, (int)(Slots * SlotStride)), Bf16.Random(random, (int)(Slots * SlotStride)));

    private static ushort[] Run(Bf16Kernels kernels, ushort[] q, ushort[] keys, ushort[] values, int[] slots, int[] lengths)
    {
        var output = new ushort[slots.Length * Heads * HeadDim];
        fixed (ushort* pq = q, pk = keys, pv = values, po = output)
        {
            kernels.Attention(pq, Heads * HeadDim, pk, pv, SlotStride, HeadStride, Heads, HeadDim, slots, lengths, Scale, po, Heads * HeadDim);
        }
        return output;
    }
}
