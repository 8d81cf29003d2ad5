using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Benchmarks;

/// <summary>
/// Isolated measurements of the decode step's building blocks (profile before optimising): how each product layout
/// streams a weight (GB/s = weight bytes ÷ time), thread counts, and the fixed cost of the small per-layer ops.
/// </summary>
internal static class MicroBenchmarks
{
    public static void Run(string what)
    {
        Console.WriteLine($"interop threads: {torch.get_num_interop_threads()}");
        foreach (var threads in new[] { 1, 2 })
        {
            torch.set_num_threads(threads);
            Console.WriteLine($"--- torch threads {torch.get_num_threads()}");
            if (what is "micro" or "micro-bw")
            {
                using var big = torch.ones(256L * 1024 * 1024, ScalarType.Float32);
                var ms = Timing.Median(5, () => big.sum().Dispose(), warmups: 2);
                Console.WriteLine($"sum 1 GiB f32: {ms:F1} ms = {1073.7 / ms:F1} GB/s");
            }
            if (what is "micro" or "micro-gemv")
            {
                Products(ScalarType.BFloat16, 2048, 2048, [1, 16]);
                Products(ScalarType.BFloat16, 8192, 2048, [1, 16]);
            }
            if (what is "micro" or "micro-layout")
            {
                Layouts(2048, 2048, [1, 4, 16, 71]);
                Layouts(6144, 2048, [1, 4, 16]);
                Layouts(8192, 2048, [1, 4, 16]);
                Layouts(2048, 8192, [1, 4, 16]);
            }
            if (what is "micro" or "micro-f32")
            {
                Layouts(6144, 2048, [1, 4, 16], ScalarType.Float32);
                Layouts(2048, 2048, [1, 16], ScalarType.Float32);
            }
            if (what is "micro" or "micro-attn")
            {
                AttentionShapes();
            }
        }
        torch.set_num_threads(2);
        if (what is "micro")
        {
            Products(ScalarType.Float32, 8192, 2048, [1, 16]);
            LmHead();
            SmallOps();
        }
    }

    /// <summary>
    /// The candidate decode-time product forms, bias included, over the nn.Linear [out, in] weight. Candidates are
    /// interleaved iteration by iteration so a change in the machine's load hits them all alike.
    /// </summary>
    private static void Layouts(long outFeatures, long inFeatures, int[] batches, ScalarType dtype = ScalarType.BFloat16)
    {
        using var scope = NewDisposeScope();
        var w = torch.randn(outFeatures, inFeatures, dtype: dtype) * 0.02;
        var bias = torch.randn(outFeatures, dtype: dtype);
        var biasColumn = bias.unsqueeze(1);
        var mb = w.NumberOfElements * w.ElementSize / 1e6;
        foreach (var m in batches)
        {
            var x = torch.randn(m, inFeatures, dtype: dtype);
            var cases = new List<(string Name, Action Op)>();
            cases.Add(("linear+bias", () => nn.functional.linear(x, w, bias).Dispose()));
            cases.Add(("addmm(bcol,W,xT).t().contig", () => { using var s = NewDisposeScope(); torch.addmm(biasColumn, w, x.t(), 1, 1).t().contiguous(); }));
            if (m == 1)
            {
                cases.Add(("mv(W,x)+b", () => { using var s = NewDisposeScope(); _ = torch.mv(w, x[0]) + bias; }));
            }
            var times = Interleaved(15, cases.Select(c => c.Op).ToArray());
            for (var i = 0; i < cases.Count; i++)
            {
                Console.WriteLine($"{dtype} m={m,-3} [{outFeatures},{inFeatures}] {cases[i].Name,-28}: {times[i],7:F3} ms = {mb / times[i],5:F1} GB/s");
            }
        }
    }

    /// <summary>
    /// Medians (ms) of each action, run round-robin after a warm-up round, each round starting one action later: in a
    /// fixed order the action in second place ran 20-40% slower than the same step in first or third place (three slot
    /// layouts of one 16-row decode step, 2026-12-03; rotated, the three tied), so no action keeps one place.
    /// </summary>
    public static double[] Interleaved(int iterations, Action[] actions) =>
        Interleaved(iterations, [.. actions.Select(action => ((Action?)null, action))]);

    /// <summary>
    /// <see cref="Interleaved(int, Action[])"/> with an untimed setup before each timed action (switching kernels, which
    /// packs or restores the decoder's weights: hundreds of milliseconds that are no part of a step).
    /// </summary>
    public static double[] Interleaved(int iterations, (Action? Setup, Action Timed)[] actions)
    {
        foreach (var (setup, action) in actions)
        {
            setup?.Invoke();
            action();
        }
        var times = new double[actions.Length][];
        for (var a = 0; a < actions.Length; a++)
        {
            times[a] = new double[iterations];
        }
        for (var i = 0; i < iterations; i++)
        {
            for (var k = 0; k < actions.Length; k++)
            {
                var a = (i + k) % actions.Length;
                actions[a].Setup?.Invoke();
                var sw = Stopwatch.StartNew();
                actions[a].Timed();
                times[a][i] = sw.Elapsed.TotalMilliseconds;
            }
        }
        return times.Select(t => { Array.Sort(t); return t[iterations / 2]; }).ToArray();
    }

    private static void AttentionShapes()
    {
        using var scope = NewDisposeScope();
        var bf = ScalarType.BFloat16;
        var cache = torch.randn(48, 32, 208, 64, dtype: bf); // [slots, heads, max length, head dim], as Kosmos2KvCache
        foreach (var (b, l) in new[] { (1, 72), (16, 72), (16, 192) })
        {
            var q = torch.randn(b, 32, 1, 64, dtype: bf);
            var k = cache.narrow(0, 0, b).narrow(2, 0, l);
            var kContiguous = k.contiguous();
            var mask = torch.zeros(b, 1, 1, l, dtype: bf);
            var cases = new List<(string Name, Action Op)>
            {
                ("sdpa", () => nn.functional.scaled_dot_product_attention(q, k, k).Dispose()),
                ("sdpa+mask", () => nn.functional.scaled_dot_product_attention(q, k, k, mask).Dispose()),
                ("sdpa contiguous k/v", () => nn.functional.scaled_dot_product_attention(q, kContiguous, kContiguous).Dispose()),
                ("sdpa+mask contiguous k/v", () => nn.functional.scaled_dot_product_attention(q, kContiguous, kContiguous, mask).Dispose()),
                ("matmul-softmax-matmul", () =>
                {
                    using var s = NewDisposeScope();
                    var scores = torch.matmul(q, k.transpose(2, 3)) * 0.125;
                    torch.matmul(nn.functional.softmax(scores + mask, -1, ScalarType.Float32).to(bf), k);
                }),
                ("matmul-softmax-matmul f32", () =>
                {
                    using var s = NewDisposeScope();
                    var scores = torch.matmul(q.to(ScalarType.Float32), k.transpose(2, 3).to(ScalarType.Float32)) * 0.125;
                    torch.matmul(nn.functional.softmax(scores + mask, -1), k.to(ScalarType.Float32)).to(bf);
                }),
            };
            var times = Interleaved(31, cases.Select(c => c.Op).ToArray());
            for (var i = 0; i < cases.Count; i++)
            {
                Console.WriteLine($"attention b={b,-2} L={l,-3} {cases[i].Name,-26}: {times[i] * 1e3,8:F1} us");
            }
        }
    }

    private static void Products(ScalarType dtype, long outFeatures, long inFeatures, int[] batches)
    {
        using var scope = NewDisposeScope();
        var w = torch.randn(outFeatures, inFeatures, dtype: dtype) * 0.02; // [out, in] as nn.Linear stores it
        var wt = w.t().contiguous(); // [in, out]
        var bias = torch.randn(outFeatures, dtype: dtype);
        var mb = w.NumberOfElements * w.ElementSize / 1e6;
        foreach (var m in batches)
        {
            var x = torch.randn(m, inFeatures, dtype: dtype);
            var cases = new List<(string Name, Action Op)>();
            cases.Add(("linear", () => nn.functional.linear(x, w).Dispose()));
            Action withBias = () => nn.functional.linear(x, w, bias).Dispose();
            cases.Add(("linear+bias", withBias));
            cases.Add(("matmul x·Wt[in,out]", () => torch.matmul(x, wt).Dispose()));
            cases.Add(("addmm b+x·Wt[in,out]", () => torch.addmm(bias, x, wt, 1, 1).Dispose()));
            cases.Add(("matmul W·xT", () => torch.matmul(w, x.t()).Dispose()));
            if (m == 1)
            {
                cases.Add(("mv W·x", () => torch.mv(w, x[0]).Dispose()));
            }
            foreach (var (name, op) in cases)
            {
                var ms = Timing.Median(21, op, warmups: 2);
                Console.WriteLine($"{dtype} [{m},{inFeatures}]x[{outFeatures},{inFeatures}]T {name,-22}: {ms,7:F3} ms = {mb / ms,5:F1} GB/s");
            }
        }
    }

    private static void LmHead()
    {
        using var scope = NewDisposeScope();
        var w = torch.randn(65037, 2048, dtype: ScalarType.BFloat16);
        var x = torch.randn(1, 2048, dtype: ScalarType.BFloat16);
        var mb = w.NumberOfElements * w.ElementSize / 1e6;
        var ms = Timing.Median(9, () => nn.functional.linear(x, w).Dispose(), warmups: 2);
        Console.WriteLine($"lm_head bf16 [1,2048]x[65037,2048]T linear: {ms:F2} ms = {mb / ms:F1} GB/s");
    }

    private static void SmallOps()
    {
        using var scope = NewDisposeScope();
        var bf = ScalarType.BFloat16;
        var x = torch.randn(1, 1, 2048, dtype: bf);
        var y = torch.randn(1, 1, 2048, dtype: bf);
        var h = torch.randn(1, 1, 8192, dtype: bf);
        var g = torch.ones(2048, dtype: bf);
        var b = torch.zeros(2048, dtype: bf);
        var g32 = torch.ones(2048);
        var b32 = torch.zeros(2048);
        var q = torch.randn(1, 32, 1, 64, dtype: bf);
        var k = torch.randn(1, 32, 72, 64, dtype: bf);
        var k16 = torch.randn(16, 32, 72, 64, dtype: bf);
        var q16 = torch.randn(16, 32, 1, 64, dtype: bf);
        long[] shape = [2048];
        var cases = new (string, Action)[]
        {
            ("add [1,1,2048]", () => (x + y).Dispose()),
            ("add in-place", () => x.add_(y)),
            ("layer_norm bf16 direct", () => nn.functional.layer_norm(x, shape, g, b, 1e-5).Dispose()),
            ("layer_norm bf16 via f32 (3 casts)", () =>
            {
                using var s = NewDisposeScope();
                nn.functional.layer_norm(x.to(ScalarType.Float32), shape, g.to(ScalarType.Float32), b.to(ScalarType.Float32), 1e-5).to(bf);
            }),
            ("layer_norm via f32, f32 params", () =>
            {
                using var s = NewDisposeScope();
                nn.functional.layer_norm(x.to(ScalarType.Float32), shape, g32, b32, 1e-5).to(bf);
            }),
            ("gelu [1,1,8192]", () => nn.functional.gelu(h).Dispose()),
            ("sdpa b1 L72", () => nn.functional.scaled_dot_product_attention(q, k, k).Dispose()),
            ("sdpa b16 L72", () => nn.functional.scaled_dot_product_attention(q16, k16, k16).Dispose()),
            ("view+transpose", () => { using var s = NewDisposeScope(); x.view(1, 1, 32, 64).transpose(1, 2); }),
            ("dispose scope only", () => { using var s = NewDisposeScope(); }),
        };
        foreach (var (name, op) in cases)
        {
            var us = Timing.Median(201, op, warmups: 2) * 1e3;
            Console.WriteLine($"small op {name,-34}: {us,8:F1} us");
        }
    }
}
