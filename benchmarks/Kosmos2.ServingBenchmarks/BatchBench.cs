using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Kosmos2.Contracts.V1;
using Kosmos2.Launch;
using GatewayClient = Kosmos2.Contracts.V1.Kosmos2.Kosmos2Client;

namespace Kosmos2.ServingBenchmarks;

/// <summary>
/// `batch`: brief captions of <c>--images</c> images on the full-size random-weight cluster, sent one at a time (the
/// way users run Kosmos-2 today) and then through the real <c>kosmos2 batch</c> process, in one run. Each mode gets
/// its own fresh images of the same size (seeded), so both pay the vision encode of every image (no cache hits).
/// The batch's time includes starting its process. Target: batch ≥ 4× one at a time.
/// </summary>
internal static class BatchBench
{
    public static async Task RunAsync(BenchOptions options, Figures figures)
    {
        var count = options.Int("images", 64);
        var tokens = options.Int("tokens", 16);
        Progress.Log($"sizing: {count} images (400×300) per mode, brief captions, --max-new-tokens {tokens} (greedy; the random model may stop earlier at </s>)");
        var cli = RepoPaths.BuiltAssembly(Path.Combine("cli", "Kosmos2.Cli"), "kosmos2");
        await using var cluster = await FullSizeCluster.StartAsync();
        var api = new GatewayClient(cluster.Gateway.Channel);
        var folder = Directory.CreateTempSubdirectory("kosmos2-batch-bench-");
        try
        {
            // Warm-up: one caption, so neither mode pays the first call's start-up.
            await GatewayBench.GatewayOnceAsync(api, Caption(RandomImages.Png(400, 300, seed: 1), tokens));

            var single = Stopwatch.StartNew();
            var singleTokens = 0;
            for (var i = 0; i < count; i++)
            {
                var result = await GatewayBench.GatewayOnceAsync(api, Caption(RandomImages.Png(400, 300, seed: 1000 + i), tokens));
                singleTokens += (int)result.Usage.GeneratedTokens;
                if ((i + 1) % 8 == 0)
                {
                    Progress.Log($"one at a time: {i + 1}/{count} in {single.Elapsed.TotalSeconds:F1} s; load {LoadAverage.Now()}");
                }
            }
            var singleSeconds = single.Elapsed.TotalSeconds;

            for (var i = 0; i < count; i++)
            {
                File.WriteAllBytes(Path.Combine(folder.FullName, $"image_{i:000}.png"), RandomImages.Png(400, 300, seed: 2000 + i));
            }
            var output = Path.Combine(folder.FullName, "results.jsonl");
            var batch = Stopwatch.StartNew();
            var exit = await RunBatchAsync(cli, folder.FullName, output, cluster.Gateway.Address, tokens);
            var batchSeconds = batch.Elapsed.TotalSeconds;
            var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var ok = lines.Count(l => l.GetProperty("status").GetString() == "OK");
            if (exit != 0 || ok != count)
            {
                var why = lines.Where(l => l.GetProperty("status").GetString() != "OK")
                    .GroupBy(l => $"{l.GetProperty("status").GetString()}: {(l.TryGetProperty("error", out var e) ? e.GetString() : "")}")
                    .Select(g => $"{g.Count()} × {g.Key}");
                throw new InvalidOperationException($"kosmos2 batch exited {exit} with {ok}/{count} OK lines; failed: {string.Join("; ", why)}");
            }
            var batchTokens = lines.Sum(l => l.GetProperty("new_token_ids").GetArrayLength());
            Progress.Log($"one at a time: {count} images, {singleTokens} tokens in {singleSeconds:F1} s; batch: {count} images, {batchTokens} tokens in {batchSeconds:F1} s");
            figures.Add("one_at_a_time_images_per_s", count / singleSeconds, "images/s");
            figures.Add("batch_images_per_s", count / batchSeconds, "images/s");
            figures.Add("one_at_a_time_tokens_per_s", singleTokens / singleSeconds, "tok/s");
            figures.Add("batch_tokens_per_s", batchTokens / batchSeconds, "tok/s");
            figures.Add("batch_vs_one_at_a_time", singleSeconds / batchSeconds, "× (images/s)");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static GenerateRequest Caption(byte[] image, int tokens) => new()
    {
        Image = new Image { Data = ByteString.CopyFrom(image) },
        Task = TaskKind.BriefCaption,
        Stopping = new StoppingParameters { MaxNewTokens = (uint)tokens },
    };

    /// <summary>`kosmos2 batch FOLDER` as a user runs it; its plain progress lines are relayed.</summary>
    private static async Task<int> RunBatchAsync(string cli, string folder, string output, string gateway, int tokens)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { cli, "batch", folder, "--output", output, "--gateway", gateway, "--max-new-tokens", tokens.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Progress.Log($"batch: {line}"); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) Progress.Log($"batch (stderr): {line}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
