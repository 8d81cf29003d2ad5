using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Kosmos2.Kernels;

namespace Kosmos2.Benchmarks;

/// <summary>The machine's limits as the native kernels see them: streaming read bandwidth and bf16 product peak.</summary>
internal static unsafe class KernelBenchmarks
{
    /// <summary>
    /// GB/s of a vectorised read-and-add over 1 GiB split across <paramref name="threads"/> threads (4 independent
    /// 512-bit accumulators each, so the loop waits on memory, not on adds). Median of 5.
    /// </summary>
    public static double ReadBandwidth(int threads)
    {
        const long Bytes = 1L << 30;
        var data = (float*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        try
        {
            var count = Bytes / sizeof(float);
            new Span<byte>(data, (int)Bytes).Fill(1); // touch every page before timing
            var sink = 0f;
            var ms = MicroBenchmarks.Median(5, () =>
            {
                var partial = new float[threads];
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    var from = count * t / threads / 64 * 64;
                    var to = t == threads - 1 ? count : count * (t + 1) / threads / 64 * 64;
                    Vector512<float> a = default, b = default, c = default, d = default;
                    for (var i = from; i < to; i += 64)
                    {
                        a += Vector512.LoadAligned(data + i);
                        b += Vector512.LoadAligned(data + i + 16);
                        c += Vector512.LoadAligned(data + i + 32);
                        d += Vector512.LoadAligned(data + i + 48);
                    }
                    partial[t] = Vector512.Sum(a + b + c + d);
                });
                sink += partial.Sum();
            });
            GC.KeepAlive(sink);
            return Bytes / (ms / 1e3) / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    /// <summary>Best GFLOP/s of <paramref name="kernels"/> over the decoder's prompt-chunk products (128 rows). Median of 5 per shape.</summary>
    public static double GemmPeak(Bf16Kernels kernels, Action<string> log)
    {
        var best = 0.0;
        foreach (var (n, k) in new[] { (6144, 2048), (8192, 2048), (2048, 8192) })
        {
            const int Rows = 128;
            var random = new Random(n + k);
            var x = RandomBf16(random, Rows * k);
            var w = RandomBf16(random, n * k);
            var bias = RandomBf16(random, n);
            var y = new ushort[Rows * n];
            var ms = MicroBenchmarks.Median(5, () => kernels.Linear(x, Rows, w, n, bias, y));
            var gflops = 2.0 * Rows * n * k / (ms / 1e3) / 1e9;
            log($"gemm bf16 {Rows}x{n}x{k}: {ms:F2} ms, {gflops:F0} GFLOP/s ({kernels})");
            best = Math.Max(best, gflops);
        }
        return best;
    }

    private static ushort[] RandomBf16(Random random, int count)
    {
        var values = new ushort[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (ushort)(BitConverter.SingleToInt32Bits((float)(random.NextDouble() - 0.5)) >> 16);
        }
        return values;
    }
}
