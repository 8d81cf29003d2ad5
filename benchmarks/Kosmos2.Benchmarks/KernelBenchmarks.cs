using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Kosmos2.Kernels;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Benchmarks;

/// <summary>The machine's limits as the native kernels see them: streaming read bandwidth and bf16 product peak.</summary>
internal static unsafe class KernelBenchmarks
{
    /// <summary>
    /// GB/s of a vectorised read-and-add over 1 GiB split across <paramref name="threads"/> threads (4 independent
    /// accumulators each, 512-bit where the CPU has it, else 256-bit: so the loop waits on memory, not on adds).
    /// Median of 5.
    /// </summary>
    public static double ReadBandwidth(int threads)
    {
        using var read = new StreamingRead(threads);
        var ms = Timing.Median(5, read.Run, warmups: 2);
        return StreamingRead.Bytes / (ms / 1e3) / 1e9;
    }

    /// <summary>
    /// Runs <paramref name="native"/> as the workers serve the native kernels: libtorch at one thread beside them (so its
    /// OpenMP threads do not spin on the kernels' cores), back to <paramref name="threads"/> after.
    /// </summary>
    public static void AsServed(int threads, Action native)
    {
        torch.set_num_threads(KernelChoice.TorchThreadsBesideNative);
        native();
        torch.set_num_threads(threads);
    }

    /// <summary>
    /// One vectorised pass over a 1 GiB buffer of its own, split across threads; <see cref="Run"/> times it. Used by
    /// <see cref="ReadBandwidth"/> and, interleaved with decode steps, for the floor of a batch-1 step.
    /// </summary>
    public sealed class StreamingRead : IDisposable
    {
        public const long Bytes = 1L << 30;

        private readonly int _threads;
        private readonly float* _data;
        private float _sink;

        public StreamingRead(int threads)
        {
            _threads = threads;
            _data = (float*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
            new Span<byte>(_data, (int)Bytes).Fill(1); // touch every page before timing
        }

        public void Run()
        {
            var count = Bytes / sizeof(float);
            var partial = new float[_threads];
            Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, t =>
            {
                var from = count * t / _threads / 64 * 64;
                var to = t == _threads - 1 ? count : count * (t + 1) / _threads / 64 * 64;
                partial[t] = Vector512.IsHardwareAccelerated ? Sum512(_data, from, to) : Sum256(_data, from, to);
            });
            _sink += partial.Sum();
        }

        public void Dispose()
        {
            GC.KeepAlive(_sink);
            NativeMemory.AlignedFree(_data);
        }
    }

    private static float Sum512(float* data, long from, long to)
    {
        Vector512<float> a = default, b = default, c = default, d = default;
        for (var i = from; i < to; i += 64)
        {
            a += Vector512.LoadAligned(data + i);
            b += Vector512.LoadAligned(data + i + 16);
            c += Vector512.LoadAligned(data + i + 32);
            d += Vector512.LoadAligned(data + i + 48);
        }
        return Vector512.Sum(a + b + c + d);
    }

    // Vector512 without AVX-512 is emulated in software (far below the memory's speed): 256-bit loads, 8 accumulators.
    private static float Sum256(float* data, long from, long to)
    {
        Vector256<float> a = default, b = default, c = default, d = default, e = default, f = default, g = default, h = default;
        for (var i = from; i < to; i += 64)
        {
            a += Vector256.LoadAligned(data + i);
            b += Vector256.LoadAligned(data + i + 8);
            c += Vector256.LoadAligned(data + i + 16);
            d += Vector256.LoadAligned(data + i + 24);
            e += Vector256.LoadAligned(data + i + 32);
            f += Vector256.LoadAligned(data + i + 40);
            g += Vector256.LoadAligned(data + i + 48);
            h += Vector256.LoadAligned(data + i + 56);
        }
        return Vector256.Sum(a + b + c + d + e + f + g + h);
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
            var ms = Timing.Median(5, () => kernels.Linear(x, Rows, w, n, bias, y), warmups: 2);
            var gflops = 2.0 * Rows * n * k / (ms / 1e3) / 1e9;
            log($"gemm bf16 {Rows}x{n}x{k}: {ms:F2} ms, {gflops:F0} GFLOP/s ({kernels})");
            best = Math.Max(best, gflops);
            // The decoder blocks' weights run packed (Bf16Kernels.Pack), the faster layout: the peak is the better of the two.
            var packed = Packed(kernels, w, n, k);
            var packedMs = Timing.Median(5, () => LinearPacked(kernels, x, Rows, packed, n, k, bias, y), warmups: 2);
            var packedGflops = 2.0 * Rows * n * k / (packedMs / 1e3) / 1e9;
            log($"gemm bf16 {Rows}x{n}x{k} packed: {packedMs:F2} ms, {packedGflops:F0} GFLOP/s");
            best = Math.Max(best, packedGflops);
        }
        return best;
    }

    /// <summary>A packed copy of the weight w [n, k] (<see cref="Bf16Kernels.Pack"/>).</summary>
    private static ushort[] Packed(Bf16Kernels kernels, ushort[] w, int n, int k)
    {
        var packed = (ushort[])w.Clone();
        fixed (ushort* pw = packed)
        {
            kernels.Pack(pw, n, k);
        }
        return packed;
    }

    /// <summary>y (bf16) = x · wᵀ + bias over a packed weight.</summary>
    private static void LinearPacked(Bf16Kernels kernels, ushort[] x, int rows, ushort[] packed, int n, int k, ushort[] bias, ushort[] y)
    {
        fixed (ushort* px = x, pw = packed, pb = bias, py = y)
        {
            kernels.LinearPacked(px, rows, k, pw, n, k, pb, py, n, yFloat32: false);
        }
    }

    /// <summary>
    /// `kernels`: each decoder product shape at decode and prompt-chunk row counts, libtorch (linear, and mv at one row)
    /// against the native kernels over the same bf16 tensors, interleaved; GB/s of weight streamed and GFLOP/s.
    /// </summary>
    public static void Products(int threads)
    {
        var native = Bf16Kernels.Best(threads);
        Console.WriteLine($"native: {native}; torch threads {torch.get_num_threads()}");
        foreach (var (n, k) in new[] { (6144, 2048), (2048, 2048), (8192, 2048), (2048, 8192), (65037, 2048) })
        {
            using var w = torch.randn(n, k).to(ScalarType.BFloat16);
            foreach (var rows in new[] { 1, 4, 16, 71, 128 })
            {
                using var x = torch.randn(rows, k).to(ScalarType.BFloat16);
                using var y = torch.empty(rows, n, ScalarType.BFloat16);
                var wBits = new ushort[n * k];
                var xBits = new ushort[rows * k];
                var yBits = new ushort[rows * n];
                w.bytes.CopyTo(MemoryMarshal.AsBytes(wBits.AsSpan()));
                x.bytes.CopyTo(MemoryMarshal.AsBytes(xBits.AsSpan()));
                var actions = new List<Action>
                {
                    () => { using var s = NewDisposeScope(); nn.functional.linear(x, w); },
                    () => AsServed(threads, () => native.Linear(xBits, rows, wBits, n, [], yBits)),
                };
                var packs = Bf16Kernels.Packs(n, k);
                if (packs)
                {
                    var packedBits = Packed(native, wBits, n, k);
                    actions.Add(() => AsServed(threads, () => LinearPacked(native, xBits, rows, packedBits, n, k, [], yBits)));
                }
                if (rows == 1)
                {
                    actions.Add(() => { using var s = NewDisposeScope(); torch.mv(w, x.reshape(k)); });
                }
                var times = MicroBenchmarks.Interleaved(rows == 1 ? 15 : 7, [.. actions]);
                var gb = 2.0 * n * k / 1e9;
                var gflop = 2.0 * rows * n * k / 1e9;
                Console.WriteLine($"[{n,5} x {k,4}] rows {rows,3}: torch linear {times[0],7:F2} ms ({gb / times[0] * 1e3,5:F1} GB/s, {gflop / times[0] * 1e3,5:F0} GFLOP/s)"
                    + $"  native {times[1],7:F2} ms ({gb / times[1] * 1e3,5:F1} GB/s, {gflop / times[1] * 1e3,5:F0} GFLOP/s)"
                    + (packs ? $"  packed {times[2],7:F2} ms ({gb / times[2] * 1e3,5:F1} GB/s, {gflop / times[2] * 1e3,5:F0} GFLOP/s)" : "")
                    + (rows == 1 ? $"  torch mv {times[^1],7:F2} ms" : "") + $"  linear/native {times[0] / times[1]:F2}x");
            }
        }
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
