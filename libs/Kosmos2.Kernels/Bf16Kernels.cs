namespace Kosmos2.Kernels;

/// <summary>
/// bfloat16 products and attention with float32 accumulation, batch-invariant by construction: each output element
/// is reduced over the input dimension in one fixed order (native/k2kernels.c), whatever the row count, the row's
/// place, the instruction set chosen here or the thread count. Work is split across output features (products) or
/// query tokens × heads (attention), never across a reduction. bf16 values are raw bits (<see cref="ushort"/>).
/// </summary>
public sealed unsafe class Bf16Kernels
{
    // Pieces per thread: small enough that a core taken away by another process costs a fraction of a piece
    // (2-core machine shared with builds), large enough that a piece of a [2048, 2048] product is ≥ 64 features on average.
    private const int PiecesPerThread = 4;
    private const int MinFeaturesPerPiece = 48;

    // Multiply-adds below which a call runs on the calling thread alone: waking a worker costs microseconds and keeps it
    // spinning after the call, more than a small call (a tiny model's every product, a short attention) takes itself.
    // 256 Ki multiply-adds take ~2 µs at one row's 100+ GFLOP/s of one core.
    private const long MinWorkToSplit = 256 * 1024;

    private static readonly Lazy<KernelIsa> BestIsaLazy = new(() => (KernelIsa)NativeMethods.BestIsa());

    /// <param name="isa">Instruction set; must be one this CPU runs.</param>
    /// <param name="threads">Threads to spread one call over; 0 = <see cref="Environment.ProcessorCount"/>.</param>
    public Bf16Kernels(KernelIsa isa, int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (!Runs(isa))
        {
            throw new PlatformNotSupportedException($"This CPU does not run {isa}; the best it runs is {BestIsa}.");
        }
        Isa = isa;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
    }

    /// <summary>The fastest instruction set this CPU runs.</summary>
    public static KernelIsa BestIsa => BestIsaLazy.Value;

    /// <summary>True when this CPU runs <paramref name="isa"/> (the portable path runs everywhere; AVX-512-BF16 CPUs also run AVX2).</summary>
    public static bool Runs(KernelIsa isa) => isa == KernelIsa.Portable || (int)isa <= (int)BestIsa;

    /// <summary>Every instruction set this CPU runs, slowest first.</summary>
    public static IReadOnlyList<KernelIsa> Supported => [.. Enum.GetValues<KernelIsa>().Where(Runs)];

    /// <summary>Kernels on <see cref="BestIsa"/> over every CPU the process may use.</summary>
    public static Bf16Kernels Best(int threads = 0) => new(BestIsa, threads);

    public KernelIsa Isa { get; }

    public int Threads { get; }

    /// <summary>For logs: instruction set and threads.</summary>
    public override string ToString() => $"{Isa} ({Isa switch
    {
        KernelIsa.Avx512Bf16 => $"vdpbf16ps, K blocks of {NativeMethods.KBlockBf16()} from the L1 size",
        KernelIsa.Avx2Fma => "AVX2 + FMA, bf16 widened to float32, same reduction order",
        _ => "portable C, same reduction order",
    }}), {Threads} thread(s)";

    /// <summary>
    /// y[m, n] = Σ_k x[m, k]·w[n, k] (+ bias[n]) for m &lt; <paramref name="rows"/>, n &lt; <paramref name="outFeatures"/>;
    /// x [rows, inFeatures] (row stride <paramref name="ldx"/>), w [outFeatures, inFeatures] contiguous, bias [outFeatures]
    /// or null, y [rows, outFeatures] (row stride <paramref name="ldy"/>) in float32 or bf16 (rounded to nearest even once,
    /// after the bias).
    /// </summary>
    public void Linear(ushort* x, int rows, long ldx, ushort* w, int outFeatures, int inFeatures, ushort* bias, void* y, long ldy, bool yFloat32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(outFeatures);
        ArgumentOutOfRangeException.ThrowIfNegative(inFeatures);
        var isa = (int)Isa;
        var f32 = yFloat32 ? 1 : 0;
        var pieces = (long)rows * outFeatures * inFeatures < MinWorkToSplit ? 1 : Math.Clamp(outFeatures / MinFeaturesPerPiece, 1, Threads * PiecesPerThread);
        // Piece boundaries on multiples of 6 features: the micro-kernel's feature block.
        Split(outFeatures, 6, pieces, (n0, n1) => NativeMethods.LinearBf16(x, rows, ldx, w, inFeatures, inFeatures, bias, y, ldy, f32, n0, n1, isa));
    }

    /// <summary>
    /// The features of a weight [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>] that <see cref="Pack"/>
    /// packs: its whole groups of 16 (inputs must come in whole pairs). The last outFeatures % 16 stay stored, and
    /// <see cref="LinearPacked"/> runs them on the stored-layout kernel.
    /// </summary>
    public static int PackedFeatures(int outFeatures, int inFeatures) => inFeatures >= 2 && inFeatures % 2 == 0 ? outFeatures / 16 * 16 : 0;

    /// <summary>True when <see cref="Pack"/> packs any of a weight's features (<see cref="PackedFeatures"/> &gt; 0).</summary>
    public static bool Packs(int outFeatures, int inFeatures) => PackedFeatures(outFeatures, inFeatures) > 0;

    /// <summary>
    /// Rewrites a contiguous bf16 weight [outFeatures, inFeatures] in place into the layout of
    /// <see cref="LinearPacked"/> (native/k2kernels.c: each group of 16 features as pairs of inputs interleaved across
    /// the 16; the <see cref="PackedFeatures"/> only, the rest left as stored), or back with <paramref name="unpack"/>.
    /// Same bytes, no second copy; the weight means nothing to any other reader while packed (<see cref="PackedRows"/>
    /// reads its rows). The layout does not depend on the instruction set.
    /// </summary>
    public void Pack(ushort* w, int outFeatures, int inFeatures, bool unpack = false)
    {
        if (!Packs(outFeatures, inFeatures))
        {
            throw new ArgumentException($"A [{outFeatures}, {inFeatures}] weight cannot be packed: it needs 16 features or more and an even input count.");
        }
        var groups = PackedFeatures(outFeatures, inFeatures) / 16;
        var failed = 0;
        Split(groups, 1, Math.Clamp(groups, 1, Threads * PiecesPerThread), (g0, g1) =>
        {
            if (NativeMethods.PackBf16(w + g0 * 16 * inFeatures, (g1 - g0) * 16, inFeatures, unpack ? 1 : 0) != 0)
            {
                Interlocked.Exchange(ref failed, 1);
            }
        });
        if (failed != 0)
        {
            throw new InvalidOperationException("Packing a weight failed: no memory for one group's copy.");
        }
    }

    /// <summary>
    /// <see cref="Linear(ushort*, int, long, ushort*, int, int, ushort*, void*, long, bool)"/> over a weight packed by
    /// <see cref="Pack"/>: one fixed chain over the input pairs per element of the packed features (a different order
    /// from <see cref="Linear(ushort*, int, long, ushort*, int, int, ushort*, void*, long, bool)"/>'s, the same on every
    /// instruction set), split over groups of 16 features only; the unpacked last features run on the stored-layout
    /// kernel. Either way a row's bits depend on that row alone.
    /// </summary>
    public void LinearPacked(ushort* x, int rows, long ldx, ushort* w, int outFeatures, int inFeatures, ushort* bias, void* y, long ldy, bool yFloat32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        if (!Packs(outFeatures, inFeatures))
        {
            throw new ArgumentException($"A [{outFeatures}, {inFeatures}] weight is never packed.");
        }
        var isa = (int)Isa;
        var f32 = yFloat32 ? 1 : 0;
        var packed = PackedFeatures(outFeatures, inFeatures);
        var groups = packed / 16;
        var pieces = (long)rows * outFeatures * inFeatures < MinWorkToSplit ? 1 : Math.Clamp(groups / 3, 1, Threads * PiecesPerThread);
        // Piece boundaries on multiples of 3 groups: the micro-kernel's width.
        Split(groups, 3, pieces, (g0, g1) => NativeMethods.LinearPackedBf16(x, rows, ldx, w, inFeatures, bias, y, ldy, f32, g0, g1, isa));
        if (packed < outFeatures)
        {
            // At most 15 stored features (lm_head's last 13 of 65,037): a few hundred thousand multiply-adds, on this thread.
            NativeMethods.LinearBf16(x, rows, ldx, w, inFeatures, inFeatures, bias, y, ldy, f32, packed, outFeatures, isa);
        }
    }

    /// <summary>
    /// Rows <paramref name="ids"/> of a weight [outFeatures, inFeatures] packed by <see cref="Pack"/>, as stored rows, into
    /// <paramref name="y"/> [ids.Length, inFeatures]: an embedding table tied to a packed output projection.
    /// </summary>
    public static void PackedRows(ushort* w, int outFeatures, int inFeatures, ReadOnlySpan<long> ids, ushort* y)
    {
        foreach (var id in ids)
        {
            if (id < 0 || id >= outFeatures)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Row ids must lie in [0, {outFeatures}).");
            }
        }
        fixed (long* pids = ids)
        {
            if (NativeMethods.PackedRowsBf16(w, outFeatures, inFeatures, PackedFeatures(outFeatures, inFeatures), pids, ids.Length, y) != 0)
            {
                throw new InvalidOperationException("Reading packed rows failed.");
            }
        }
    }

    /// <summary>Span form of <see cref="Linear(ushort*, int, long, ushort*, int, int, ushort*, void*, long, bool)"/> with bf16 output.</summary>
    public void Linear(ReadOnlySpan<ushort> x, int rows, ReadOnlySpan<ushort> weight, int outFeatures, ReadOnlySpan<ushort> bias, Span<ushort> y)
    {
        var inFeatures = CheckLinear(x.Length, rows, weight.Length, outFeatures, bias.Length, y.Length);
        fixed (ushort* px = x, pw = weight, pb = bias, py = y)
        {
            Linear(px, rows, inFeatures, pw, outFeatures, inFeatures, bias.IsEmpty ? null : pb, py, outFeatures, yFloat32: false);
        }
    }

    /// <summary>Span form with float32 output.</summary>
    public void Linear(ReadOnlySpan<ushort> x, int rows, ReadOnlySpan<ushort> weight, int outFeatures, ReadOnlySpan<ushort> bias, Span<float> y)
    {
        var inFeatures = CheckLinear(x.Length, rows, weight.Length, outFeatures, bias.Length, y.Length);
        fixed (ushort* px = x, pw = weight, pb = bias)
        fixed (float* py = y)
        {
            Linear(px, rows, inFeatures, pw, outFeatures, inFeatures, bias.IsEmpty ? null : pb, py, outFeatures, yFloat32: true);
        }
    }

    /// <summary>
    /// Attention of one query per token over that token's own keys, per head: out[t, h] = softmax(scale·q[t, h]·K[s, h, j]ᵀ)
    /// V[s, h, j] over j &lt; lengths[t], s = slots[t], keys visited in order j = 0, 1, …. q[t] at
    /// <paramref name="q"/> + t·<paramref name="ldq"/> ([heads, headDim]); keys/values [slots, heads, maxLength, headDim]
    /// (slot stride <paramref name="slotStride"/>, head stride <paramref name="headStride"/>); out[t] at
    /// <paramref name="output"/> + t·<paramref name="ldo"/>. Reads nothing past a token's own length.
    /// </summary>
    public void Attention(ushort* q, long ldq, ushort* keys, ushort* values, long slotStride, long headStride, int heads, int headDim,
        ReadOnlySpan<int> slots, ReadOnlySpan<int> lengths, float scale, ushort* output, long ldo)
    {
        if (slots.Length != lengths.Length)
        {
            throw new ArgumentException("One key length per query token.");
        }
        if (headDim > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Head size over 256 is not supported.");
        }
        long work = 0; // multiply-adds: scores and weighted sum
        foreach (var length in lengths)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(length, 1, nameof(lengths));
            work += 2L * length * heads * headDim;
        }
        var tokens = slots.Length;
        var slotArray = slots.ToArray();
        var lengthArray = lengths.ToArray();
        var isa = (int)Isa;
        var items = tokens * heads;
        var pieces = work < MinWorkToSplit ? 1 : Math.Clamp(items, 1, Threads * PiecesPerThread);
        void Run(int p)
        {
            var i0 = (int)((long)items * p / pieces);
            var i1 = (int)((long)items * (p + 1) / pieces);
            for (var i = i0; i < i1;)
            {
                var t = i / heads;
                var h0 = i % heads;
                var h1 = Math.Min(heads, h0 + (i1 - i));
                var rc = NativeMethods.AttentionBf16(q + t * ldq, keys + slotArray[t] * slotStride, values + slotArray[t] * slotStride, headStride,
                    headDim, lengthArray[t], scale, output + t * ldo, h0, h1, isa);
                if (rc != 0)
                {
                    throw new InvalidOperationException("Attention scores could not be allocated (out of memory).");
                }
                i += h1 - h0;
            }
        }
        WorkerTeam.Shared.Run(pieces, Threads, Run);
    }

    /// <summary>True when <see cref="EncoderAttention"/> takes heads of this size (even, as the products' pairs).</summary>
    public static bool EncoderAttentionTakes(int headDim) => headDim >= 2 && headDim % 2 == 0;

    /// <summary>
    /// Unmasked attention, every query of an image over all of that image's keys (a vision encoder's self-attention, a
    /// projection's cross-attention), per head: out = softmax(scale·q·Kᵀ)·V, scores and the weighted sum as packed
    /// products, the softmax in float32, its weights rounded to bf16 unnormalised (as libtorch's CPU flash attention)
    /// and each output divided by its sum once (native/k2kernels.c). Image b's queries are rows
    /// [b·queries, (b + 1)·queries) of <paramref name="q"/> (stride <paramref name="ldq"/>), its keys and values rows
    /// [b·length, (b + 1)·length) of <paramref name="keys"/> and <paramref name="values"/> (stride <paramref name="ldkv"/>),
    /// head h at columns [h·headDim, (h + 1)·headDim) of each; out likewise (stride <paramref name="ldo"/>). Split over
    /// images × heads; an image's output depends on that image alone, the same bits on every instruction set.
    /// </summary>
    public void EncoderAttention(ushort* q, long ldq, ushort* keys, ushort* values, long ldkv, int images, int queries, int length, int heads,
        int headDim, float scale, ushort* output, long ldo)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(queries, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        if (!EncoderAttentionTakes(headDim))
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Encoder attention takes an even head size.");
        }
        var isa = (int)Isa;
        var items = images * heads;
        var work = 2L * images * heads * queries * length * headDim;
        var pieces = work < MinWorkToSplit ? 1 : Math.Clamp(items, 1, Threads * PiecesPerThread);
        var failed = 0;
        Split(items, 1, pieces, (i0, i1) =>
        {
            for (var i = i0; i < i1;)
            {
                var image = i / heads;
                var h0 = i % heads;
                var h1 = Math.Min(heads, h0 + (i1 - i));
                if (NativeMethods.EncoderAttentionBf16(q + image * queries * ldq, ldq, keys + image * length * ldkv, values + image * length * ldkv, ldkv,
                    queries, length, headDim, scale, output + image * queries * ldo, ldo, h0, h1, isa) != 0)
                {
                    Interlocked.Exchange(ref failed, 1);
                }
                i += h1 - h0;
            }
        });
        if (failed != 0)
        {
            throw new InvalidOperationException("Encoder attention could not allocate its scratch (out of memory).");
        }
    }

    /// <summary>
    /// LayerNorm of each of <paramref name="rows"/> bf16 rows over its <paramref name="width"/> values in float32 (mean and
    /// biased variance summed in a fixed order per row, native/k2kernels.c), times gamma plus beta, rounded to bf16 once.
    /// x at <paramref name="x"/> + m·<paramref name="ldx"/>, y at <paramref name="y"/> + m·<paramref name="ldy"/> (y may be x).
    /// A row's result depends on that row alone.
    /// </summary>
    public void LayerNorm(ushort* x, int rows, int width, long ldx, ushort* gamma, ushort* beta, float eps, ushort* y, long ldy)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var isa = (int)Isa;
        var pieces = (long)rows * width < MinRowWorkToSplit ? 1 : Math.Clamp(rows, 1, Threads);
        Split(rows, 1, pieces, (m0, m1) => NativeMethods.LayerNormBf16(x + m0 * ldx, m1 - m0, width, ldx, gamma, beta, eps, y + m0 * ldy, ldy, isa));
    }

    /// <summary>y[i] = a[i] + b[i] for i &lt; <paramref name="count"/>, in float32 rounded to bf16 (torch's bf16 add); y may be a or b.</summary>
    public void Add(ushort* a, ushort* b, ushort* y, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var isa = (int)Isa;
        Split(count, 1, count < MinRowWorkToSplit ? 1 : Threads, (i0, i1) => NativeMethods.AddBf16(a + i0, b + i0, y + i0, i1 - i0, isa));
    }

    /// <summary>
    /// y[i] = x[i]·sigmoid(1.702·x[i]) (CLIP's quick_gelu) with libtorch's roundings on bf16 (x·1.702, the sigmoid and the
    /// product each rounded to bf16), the sigmoid's exp the kernels' own: the same bits on every instruction set, at most
    /// one bf16 step from libtorch's; y may be x.
    /// </summary>
    public void QuickGelu(ushort* x, ushort* y, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var isa = (int)Isa;
        Split(count, 16, count < MinRowWorkToSplit ? 1 : Threads, (i0, i1) => NativeMethods.QuickGeluBf16(x + i0, y + i0, i1 - i0, isa));
    }

    // Values of row work (norms, adds) below which a call stays on the calling thread: one 2,048-wide decode row takes
    // about a microsecond, less than waking a worker; 16 rows of fc1's 8,192 take tens.
    private const long MinRowWorkToSplit = 32 * 1024;

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) cut into <paramref name="pieces"/> of
    /// decreasing size on the worker team, every boundary on a multiple of <paramref name="step"/> (a micro-kernel's
    /// width, so no piece runs a narrow edge tile); empty pieces are skipped, and one piece or one thread runs the whole
    /// range on the caller.
    /// Which piece an element falls in never changes what it computes.
    /// </summary>
    private void Split(long count, int step, int pieces, Action<long, long> body)
    {
        if (pieces <= 1 || Threads == 1)
        {
            body(0, count);
            return;
        }
        // Piece p weighs pieces − p (8, 7, …, 1 of 36 at 8 pieces): pieces are claimed in order, so the last ones, which
        // decide how long one thread waits for the other at the end of a call, are the smallest. Against equal pieces,
        // in one process, alternating (2-core Zen 5, 2026-12-03): a 16-row step 0.965-0.987x, a 1-row step 0.925x.
        var units = (count + step - 1) / step;
        var total = (long)pieces * (pieces + 1) / 2;
        long Boundary(int p) => Math.Min(count, units * ((long)p * pieces - (long)p * (p - 1) / 2) / total * step);
        WorkerTeam.Shared.Run(pieces, Threads, p =>
        {
            var start = Boundary(p);
            var end = Boundary(p + 1);
            if (end > start)
            {
                body(start, end);
            }
        });
    }

    private static int CheckLinear(int xLength, int rows, int weightLength, int outFeatures, int biasLength, int yLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        if (xLength % rows != 0 || weightLength != (long)outFeatures * (xLength / rows))
        {
            throw new ArgumentException($"x holds {xLength} values for {rows} rows; weight holds {weightLength} for {outFeatures} features: shapes disagree.");
        }
        if (biasLength != 0 && biasLength != outFeatures)
        {
            throw new ArgumentException($"bias holds {biasLength} values for {outFeatures} features.");
        }
        if (yLength != (long)rows * outFeatures)
        {
            throw new ArgumentException($"y holds {yLength} values, {rows} × {outFeatures} needed.");
        }
        return xLength / rows;
    }
}
