namespace Kosmos2.Cli.Batch;

/// <summary>
/// <c>kosmos2 batch INPUT --output results.jsonl</c>: every image of a folder or a JSONL manifest through a gateway,
/// concurrently; one JSONL line per input; a rerun skips what the output already holds; Ctrl-C keeps what was written.
/// </summary>
internal static class BatchCommand
{
    public const string Usage = "batch INPUT --output FILE.jsonl [--task caption|detailed|ground|refer|ask|rec|generate] [--out-dir DIR]";

    public const string Summary = "run a task over a folder of images or a JSONL manifest, concurrently; resumable";

    public const string Details = """
        INPUT: a folder (every .png/.jpg/.jpeg/.webp/.gif/.bmp below it; id = its relative path) or a JSONL manifest,
          one object per line: {"image": "a.png", "id": "…", "task": "ground", "phrases": ["a dog"], "text": "…",
          "boxes": [[x1, y1, x2, y2]], "prompt": "…"}; only "image" is required; image paths are relative to the
          manifest; id defaults to the line number.
        Tasks: caption (brief), detailed, ground (phrases), refer (boxes, pixels or normalised when all ≤ 1; text as the
          phrase), ask (text), rec (text: the expression to locate), generate (prompt).
        Task fields for a folder (and defaults for manifest lines): --phrase P (repeat), --text T, --box x1,y1,x2,y2
          (repeat), --prompt P.
        --output FILE.jsonl: one line per input: "id", "image", "task", "status" ("OK" or the gRPC status), then the
          fields of `--json` (or "error"). Appended and flushed line by line; a rerun skips every id already there
          (--retry-failed sends failed ones again; their last line counts).
        --out-dir DIR: also the pictures with the boxes drawn, DIR/<id>.png.
        --concurrency N: most requests in flight (default two per decoder slot the gateway reports, 16 slots a
          decoder); halved on RESOURCE_EXHAUSTED, the refused request retried after the server's hint without holding
          a place (for up to 10 minutes); UNAVAILABLE retried after a backoff, at most --max-retries N (20) times.
        Progress: a bar on a terminal, plain lines otherwise. Ctrl-C stops sending and keeps every line written.
        Exit: 0 all succeeded, 1 some failed (each line says why), 2 bad arguments or input, 130 interrupted.
        """;

    private static readonly string[] Known =
        ["gateway", "api-key", "max-new-tokens", .. SamplingFlags.Names, "output", "task", "out-dir", "phrase", "text", "box", "prompt", "concurrency", "max-retries", "retry-failed"];

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = CommandLine.Parse(args, [.. SamplingFlags.Switches, "retry-failed"]);
        cli.RejectUnknown(Known);
        if (cli.Positionals.Count != 1)
        {
            throw new UsageException("batch takes one INPUT: a folder of images or a JSONL manifest.");
        }
        var outputPath = cli.Option("output") ?? throw new UsageException("batch needs --output FILE.jsonl.");
        var defaults = new BatchDefaults(cli.Option("task") ?? "caption", cli.Options("phrase"), cli.Option("text"), cli.Options("box"), cli.Option("prompt"));
        if (!BatchItem.Tasks.Contains(defaults.Task))
        {
            throw new UsageException($"--task is one of {string.Join(", ", BatchItem.Tasks)} (got '{defaults.Task}').");
        }
        var settings = Settings(cli);
        var items = BatchInputs.Read(cli.Positionals[0], defaults);
        var outDir = cli.Option("out-dir");
        if (outDir is not null)
        {
            Directory.CreateDirectory(outDir);
        }

        using var output = ResultFile.Open(outputPath);
        var retryFailed = cli.Flag("retry-failed");
        var todo = items.Where(i => !output.Existing.TryGetValue(i.Id, out var ok) || (retryFailed && !ok)).ToList();
        var skipped = items.Count - todo.Count;
        Console.WriteLine($"kosmos2 batch: {items.Count} inputs, {skipped} already in {outputPath}, {todo.Count} to run"
            + (output.TruncatedBytes > 0 ? $" (dropped a partial last line of {output.TruncatedBytes} bytes)" : ""));
        if (todo.Count == 0)
        {
            return output.Existing.Values.All(ok => ok) ? 0 : 1;
        }

        using var progress = new BatchProgress(Console.Out, !Console.IsOutputRedirected, todo.Count);
        var stopped = await BatchRunner.RunCommandAsync(cli, settings, todo, progress, outcome =>
        {
            output.Write(outcome);
            if (outDir is not null && outcome is { Report: { } report, ImageBytes: { } image })
            {
                BoxDrawing.Draw(image, report.Entities, Path.Combine(outDir, SafeFileName(outcome.Item.Id) + ".png"));
            }
        }, () => $"kosmos2 batch: interrupted; {progress.Done} lines written this run, all kept in {outputPath}. Rerun the same command to finish.");
        if (stopped is { } code)
        {
            return code;
        }
        var sent = todo.Select(i => i.Id).ToHashSet(StringComparer.Ordinal);
        var failed = progress.Failed + output.Existing.Count(e => !e.Value && !sent.Contains(e.Key));
        if (failed > 0)
        {
            Console.Error.WriteLine($"kosmos2 batch: {failed} inputs failed (see \"status\" and \"error\" in {outputPath}); rerun with --retry-failed to send them again.");
        }
        return failed > 0 ? 1 : 0;
    }

    /// <summary>What every request of a run shares, from the client options; also used by <c>eval</c>.</summary>
    internal static BatchRunSettings Settings(CommandLine cli)
    {
        var concurrency = cli.IntOption("concurrency", 0);
        var retries = cli.IntOption("max-retries", 20);
        if (concurrency < 0 || retries < 0)
        {
            throw new UsageException("--concurrency and --max-retries are ≥ 0.");
        }
        return new BatchRunSettings(ClientCommands.Stopping(cli), SamplingFlags.From(cli), concurrency, retries);
    }

    /// <summary>An id as a file name: path separators and odd characters become '_'.</summary>
    internal static string SafeFileName(string id) =>
        new(id.Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());
}
