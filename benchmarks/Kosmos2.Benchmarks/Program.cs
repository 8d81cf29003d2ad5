using System.Diagnostics;
using System.Globalization;
using Kosmos2.Benchmarks;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

// Full-size Kosmos-2 with seeded random weights (no download): vision encode, 71-token prefill, decode steps at
// batch 1/4/16 with ~70 tokens of context, at batch 16 with mixed lengths in three cache layouts, a step that admits a
// request as one forward vs two, in bfloat16 and float32, plus the memory read bandwidth and the batch-1
// weight-streaming floor. bf16 runs libtorch and the native kernels (Kosmos2.Kernels) side by side, interleaved; the
// native kernels' GEMM peak gives batch 16 its compute floor. Medians over several iterations; the last lines are
// "name: value unit".
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var threads = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
var only = args.Length > 1 ? args[1] : "bf16,f32";
torch.set_num_threads(threads);
var results = new List<(string Name, double Value, string Unit)>();
void Report(string name, double value, string unit)
{
    results.Add((name, value, unit));
    Console.WriteLine($"  {name} = {value:F2} {unit}  (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
}
Console.WriteLine($"torch threads: {torch.get_num_threads()}, cores: {Environment.ProcessorCount}");

if (only == "grounding")
{
    GroundingMaskBenchmark.Run(Report);
    Console.WriteLine();
    results.ForEach(r => Console.WriteLine($"{r.Name}: {r.Value:F2} {r.Unit}"));
    return;
}
if (only == "kernels")
{
    KernelBenchmarks.Products(threads);
    return;
}
if (only.StartsWith("micro", StringComparison.Ordinal))
{
    MicroBenchmarks.Run(only);
    return;
}
// libtorch 2.10's sum does not reach this machine's read bandwidth (31 vs ~50 GB/s measured): take the better of it
// and a plain vectorised read over all threads, so the decode floor is not too generous.
var torchBandwidth = Bandwidth();
var ownBandwidth = KernelBenchmarks.ReadBandwidth(threads);
Report("memory_read_bandwidth_torch_sum_gbps", torchBandwidth, "GB/s");
Report("memory_read_bandwidth_vector_read_gbps", ownBandwidth, "GB/s");
var bandwidth = Math.Max(torchBandwidth, ownBandwidth);
Report("memory_read_bandwidth_gbps", bandwidth, "GB/s");
var native = KernelChoice.Resolve("auto", torch.CPU, threads, out var kernelsDescription);
Console.WriteLine($"kernels: {kernelsDescription}");
var gemmPeak = double.NaN;
if (native is not null)
{
    gemmPeak = KernelBenchmarks.GemmPeak(native, Console.WriteLine);
    Report("gemm_bf16_peak_gflops", gemmPeak, "GFLOP/s");
}

foreach (var dtype in only.Split(',').Select(d => d == "f32" ? ScalarType.Float32 : ScalarType.BFloat16))
{
    var tag = dtype == ScalarType.Float32 ? "f32" : "bf16";
    Console.WriteLine($"[{tag}] building the full-size model with random weights…");
    var build = Stopwatch.StartNew();
    using var model = Kosmos2Model.CreateRandom(Kosmos2Config.Default, dtype, torch.CPU, seed: 1234);
    Console.WriteLine($"[{tag}] built in {build.Elapsed.TotalSeconds:F1} s; vision encode…");

    using var noGrad = torch.no_grad();
    using var pixels = torch.randn(1, 3, 224, 224, generator: new Generator(7));
    // bf16 with native kernels available: every timing below runs libtorch and native interleaved ([0] torch, [1] native).
    var sideBySide = dtype == ScalarType.BFloat16 && native is not null;
    // alongside: more actions timed in the same rounds (their medians follow [0] torch and [1] native).
    double[] Timed(int iterations, Action action, Action<Kosmos2.Kernels.Bf16Kernels?> use, Action[]? alongside = null)
    {
        if (!sideBySide)
        {
            return [Timing.Median(iterations, action)];
        }
        // Each as served: libtorch on every thread, or the native kernels with libtorch beside them on one.
        var times = MicroBenchmarks.Interleaved(iterations,
        [
            (() => use(null), action),
            (() => use(native), () => KernelBenchmarks.AsServed(threads, action)),
            .. (alongside ?? []).Select(a => ((Action?)null, a)),
        ]);
        use(null);
        return times;
    }
    void ReportPair(string name, double[] times)
    {
        Report($"{name}_ms", times[0], "ms");
        if (times.Length > 1)
        {
            Report($"{name}_native_ms", times[1], "ms");
            Report($"{name}_torch_over_native", times[0] / times[1], "x");
        }
    }
    var vision = Timed(5, () => { using var s = NewDisposeScope(); model.EncodeImages(pixels); }, model.UseVisionKernels);
    ReportPair($"vision_encode_{tag}", vision);

    using var image = model.EncodeImages(pixels).DetachFromDisposeScope();
    long[] prompt = [0, 64003, .. Enumerable.Range(4, 64).Select(i => (long)i), 64004, 64012, 712, 1648, 9]; // 71 tokens
    const int Slots = 48;
    using var cache = model.CreateKvCache(Slots, 208);
    Console.WriteLine($"[{tag}] prefill of {prompt.Length} tokens…");
    var prefill = Timed(5, () => { using var s = NewDisposeScope(); model.Prefill(cache, 0, prompt, 0, image); }, model.TextDecoder.UseKernels);
    ReportPair($"prefill71_{tag}", prefill);
    for (var layer = 0; layer < cache.Layers; layer++)
    {
        var (k, v) = cache.Layer(layer);
        for (var slot = 1; slot < Slots; slot++)
        {
            k[slot].copy_(k[0]);
            v[slot].copy_(v[0]);
        }
    }
    foreach (var batch in new[] { 1, 4, 16 })
    {
        Console.WriteLine($"[{tag}] decode steps at batch {batch}…");
        var slots = Enumerable.Range(0, batch).ToArray();
        var tokens = Enumerable.Repeat(712L, batch).ToArray();
        var positions = Enumerable.Repeat(prompt.Length, batch).ToArray(); // rewrites index 71: constant ~72-token context
        void Step() { using var s = NewDisposeScope(); model.DecodeStep(cache, slots, tokens, positions); }
        // Weights streamed per step: every text parameter once (lm_head is embed_tokens: count it once; the fused
        // q/k/v parameters are [D, D] views of one [3D, D] tensor, so by name they add up to it exactly once).
        var textParameters = model.TextDecoder.named_parameters().Where(p => p.name != "lm_head.weight").Sum(p => p.parameter.NumberOfElements);
        if (batch == 1 && sideBySide)
        {
            // The floor is the time to read the weights' bytes, measured in the same rounds as the steps: this shared
            // host's read bandwidth swung between 36 and 63 GB/s from one minute to the next (2026-12-02), so a
            // bandwidth taken minutes earlier made the ratio anything from 1.3 to 1.9 for the same kernels.
            using var read = new KernelBenchmarks.StreamingRead(threads);
            using var big = torch.ones(KernelBenchmarks.StreamingRead.Bytes / 4, ScalarType.Float32);
            var times = Timed(11, Step, model.TextDecoder.UseKernels,
                [read.Run, () => { using var s = NewDisposeScope(); big.sum().item<float>(); }]);
            ReportPair("decode_b1_bf16", times[..2]);
            var floor = Math.Min(times[2], times[3]) * (textParameters * 2.0 / KernelBenchmarks.StreamingRead.Bytes);
            Report("decode_b1_floor_read_gbps", KernelBenchmarks.StreamingRead.Bytes / (Math.Min(times[2], times[3]) / 1e3) / 1e9, "GB/s");
            Report("decode_b1_floor_ms", floor, "ms");
            Report("decode_b1_over_floor_ratio", times[1] / floor, "x");
            Report("decode_b1_torch_over_floor_ratio", times[0] / floor, "x");
            continue;
        }
        // At 16 rows the weights' bytes bound a step too (2.95 GB: 49 ms at 60 GB/s, 72 ms at 41): read them in the same
        // rounds, as for one row, so the step can be set against both floors.
        using var read16 = batch == 16 && sideBySide ? new KernelBenchmarks.StreamingRead(threads) : null;
        var steps = Timed(11, Step, model.TextDecoder.UseKernels, read16 is null ? null : [read16.Run]);
        var readMs = read16 is null ? double.NaN : steps[2];
        steps = steps[..Math.Min(2, steps.Length)];
        ReportPair($"decode_b{batch}_{tag}", steps);
        var step = steps[^1]; // the best kernels this machine has
        if (batch == 1 && dtype == ScalarType.BFloat16)
        {
            var floor = textParameters * 2 / (bandwidth * 1e9) * 1e3;
            Report("decode_b1_floor_ms", floor, "ms");
            Report("decode_b1_over_floor_ratio", step / floor, "x");
            Report("decode_b1_torch_over_floor_ratio", steps[0] / floor, "x");
        }
        if (batch == 16 && sideBySide)
        {
            // Two flops per parameter per row at the native kernels' measured peak.
            var computeFloor = 2.0 * textParameters * batch / (gemmPeak * 1e9) * 1e3;
            Report("decode_b16_compute_floor_ms", computeFloor, "ms");
            Report("decode_b16_over_compute_floor_ratio", step / computeFloor, "x");
            var memoryFloor = readMs * (textParameters * 2.0 / KernelBenchmarks.StreamingRead.Bytes);
            Report("decode_b16_floor_read_gbps", KernelBenchmarks.StreamingRead.Bytes / (readMs / 1e3) / 1e9, "GB/s");
            Report("decode_b16_memory_floor_ms", memoryFloor, "ms");
            Report("decode_b16_over_larger_floor_ratio", step / Math.Max(computeFloor, memoryFloor), "x");
            // Over 1.5, no kernel could meet "≤ 1.5× the compute floor" in these rounds: reading the weights alone, at the
            // rate the host gave, took longer (2026-12-03: 77.5 ms at 34.7 GB/s against a 49.9 ms compute floor, 1.55).
            Report("decode_b16_memory_floor_over_compute_floor", memoryFloor / computeFloor, "x");
        }
    }
    {
        // What a continuous batch looks like after requests came and went: 16 rows, each at its own length (72–192
        // tokens of context). Same rows three ways, interleaved so load swings hit all alike: slots 0–15 in order (a
        // view of the cache), the same slots out of order (a view of the slot range, queries scattered), and spread
        // over 46 slots (a gather copy of each row's keys and values).
        // As served: the best kernels this machine has (native where there are any, libtorch at one thread beside them).
        if (sideBySide)
        {
            model.TextDecoder.UseKernels(native);
            torch.set_num_threads(KernelChoice.TorchThreadsBesideNative);
        }
        Console.WriteLine($"[{tag}] decode steps at batch 16, mixed lengths: slots in order / out of order / spread ({(sideBySide ? "native" : "torch")})…");
        var tokens = Enumerable.Repeat(712L, 16).ToArray();
        var positions = Enumerable.Range(0, 16).Select(i => prompt.Length + (i * 8)).ToArray();
        var layouts = new (string Name, int[] Slots)[]
        {
            ("in_order", Enumerable.Range(0, 16).ToArray()),
            ("out_of_order", Enumerable.Range(0, 16).Select(i => (i * 7) % 16).ToArray()),
            ("spread", Enumerable.Range(0, 16).Select(i => i * 3).ToArray()),
        };
        var times = MicroBenchmarks.Interleaved(9, layouts.Select(l => (Action)(() =>
        {
            using var s = NewDisposeScope();
            model.DecodeStep(cache, l.Slots, tokens, positions);
        })).ToArray());
        for (var i = 0; i < layouts.Length; i++)
        {
            Report($"decode_b16_mixed_{layouts[i].Name}_{tag}_ms", times[i], "ms");
        }
        Report($"decode_b16_mixed_spread_vs_out_of_order_{tag}", times[2] / times[1], "x");

        // A continuous-batching step that admits a request: 15 rows decode while a 71-token prompt (image included)
        // is prefilled into slot 15. As one forward (Step: the weights read once) against two (Prefill, then DecodeStep).
        Console.WriteLine($"[{tag}] step of 15 decode rows + a 71-token prefill: one forward vs two…");
        var rows = Enumerable.Range(0, 15).ToArray();
        var rowTokens = tokens[..15];
        var rowPositions = positions[..15];
        var both = MicroBenchmarks.Interleaved(9,
        [
            () =>
            {
                using var s = NewDisposeScope();
                model.Step(cache, rows, rowTokens, rowPositions, [new Kosmos2.Model.Text.PrefillPart(15, prompt, 0, image)]);
            },
            () =>
            {
                using var s = NewDisposeScope();
                model.Prefill(cache, 15, prompt, 0, image);
                model.DecodeStep(cache, rows, rowTokens, rowPositions);
            },
        ]);
        Report($"step_15_decode_rows_plus_prefill71_one_forward_{tag}_ms", both[0], "ms");
        Report($"step_15_decode_rows_plus_prefill71_two_forwards_{tag}_ms", both[1], "ms");
        Report($"step_two_forwards_vs_one_{tag}", both[1] / both[0], "x");
        model.TextDecoder.UseKernels(null);
        torch.set_num_threads(threads);
    }
}

Console.WriteLine();
foreach (var (name, value, unit) in results)
{
    Console.WriteLine($"{name}: {value:F2} {unit}");
}

static double Bandwidth()
{
    using var big = torch.ones(KernelBenchmarks.StreamingRead.Bytes / 4, ScalarType.Float32); // 1 GiB
    var ms = Timing.Median(5, () => { using var s = NewDisposeScope(); big.sum().item<float>(); });
    return big.NumberOfElements * 4 / (ms / 1e3) / 1e9;
}
