using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// <c>kosmos2 batch</c> against <c>kosmos2 up</c> on the golden checkpoint: 200 copies of the golden images with mixed
/// tasks all succeed and equal the one-at-a-time commands' <c>--json</c>; a rerun skips everything; a run killed
/// halfway (Ctrl-C, then SIGKILL) and rerun completes the rest with every input exactly once.
/// </summary>
[Collection(GoldenUpCollection.Name)]
[Trait("Category", "Golden")]
public sealed class BatchCommandTests(GoldenUpFixture up)
{
    private const int Copies = 200;
    private const string MaxNewTokens = "8";
    private const string Phrase = "a red circle";
    private const string Question = "What is in the picture?";
    private const string Box = "0.1,0.1,0.6,0.5";
    private static readonly string[] Tasks = ["caption", "detailed", "ground", "refer", "ask"];

    [Fact]
    public async Task Batch_of_200_mixed_tasks_equals_one_at_a_time_reruns_skip_and_interrupted_runs_resume_without_duplicates()
    {
        var (manifest, sources) = WriteManifest(Path.Combine(up.Scratch, "batch200"));
        var expected = await OneAtATimeAsync();

        // All at once.
        var output = Path.Combine(up.Scratch, "batch200", "results.jsonl");
        var run = await CliProcess.RunAsync(Args(manifest, output), timeoutSeconds: 600);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        AssertComplete(output, sources, expected);

        // A rerun sends nothing and writes nothing.
        var before = File.ReadAllText(output);
        var rerun = await CliProcess.RunAsync(Args(manifest, output));
        Assert.True(rerun.ExitCode == 0, rerun.Stderr);
        Assert.Contains($"{Copies} inputs, {Copies} already in", rerun.Stdout);
        Assert.Equal(before, File.ReadAllText(output));

        // Ctrl-C halfway: exit 130, whole lines only. Then SIGKILL further on, and a partial line as a kill mid-write
        // leaves one. Fewer in flight, so there is a halfway. The last rerun completes the rest.
        var resumed = Path.Combine(up.Scratch, "batch200", "resumed.jsonl");
        var (interrupted, exit) = await StopAfterLinesAsync(Args(manifest, resumed, "--concurrency", "2"), resumed, lines: 10, Sigint);
        Assert.Equal(130, exit);
        Assert.InRange(interrupted, 10, Copies - 1);
        Assert.EndsWith("\n", File.ReadAllText(resumed));
        var (written, _) = await StopAfterLinesAsync(Args(manifest, resumed, "--concurrency", "2"), resumed, lines: interrupted + 10, Sigkill);
        Assert.InRange(written, interrupted + 10, Copies - 1);
        File.AppendAllText(resumed, File.ReadLines(resumed).First()[..40]);
        var finish = await CliProcess.RunAsync(Args(manifest, resumed), timeoutSeconds: 600);
        Assert.True(finish.ExitCode == 0, finish.Stdout + finish.Stderr);
        Assert.Contains($"{written} already in", finish.Stdout);
        Assert.Contains("dropped a partial last line", finish.Stdout);
        AssertComplete(resumed, sources, expected);
    }

    [Fact]
    public async Task Bad_input_exits_2_naming_the_line_and_a_wrong_key_is_a_failed_line_not_a_crash()
    {
        var folder = Directory.CreateDirectory(Path.Combine(up.Scratch, "bad")).FullName;
        var image = GoldenUpFixture.Images[0];
        var manifest = Path.Combine(folder, "m.jsonl");
        File.WriteAllText(manifest, JsonSerializer.Serialize(new { image, task = "ground" }) + "\n");
        var missing = await CliProcess.RunAsync(["batch", manifest, "--output", Path.Combine(folder, "o.jsonl"), "--gateway", up.Gateway]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("line 1: task ground needs \"phrases\"", missing.Stderr);

        File.WriteAllText(manifest, "{\"image\": \"nope.png\"}\n");
        var noImage = await CliProcess.RunAsync(["batch", manifest, "--output", Path.Combine(folder, "o.jsonl"), "--gateway", up.Gateway]);
        Assert.Equal(2, noImage.ExitCode);
        Assert.Contains("line 1: the image", noImage.Stderr);

        // A refused call is recorded on its line with its status; the run goes on and exits 1.
        File.WriteAllText(manifest, JsonSerializer.Serialize(new { image, task = "caption" }) + "\n");
        var output = Path.Combine(folder, "refused.jsonl");
        var refused = await CliProcess.RunAsync(["batch", manifest, "--output", output, "--gateway", up.Gateway, "--api-key", "wrong", "--concurrency", "1"]);
        Assert.Equal(1, refused.ExitCode);
        var line = JsonNode.Parse(File.ReadAllLines(output).Single())!;
        Assert.Equal("UNAUTHENTICATED", line["status"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(line["error"]!.GetValue<string>()));
    }

    private string[] Args(string manifest, string output, params string[] more) =>
        ["batch", manifest, "--output", output, "--gateway", up.Gateway, "--api-key", "secret-key-0123456789", "--max-new-tokens", MaxNewTokens, .. more];

    /// <summary>200 copies (distinct files) of the golden images, tasks in turn; returns the manifest and each id's (image, task).</summary>
    private static (string Manifest, Dictionary<string, (string Image, string Task)> Sources) WriteManifest(string folder)
    {
        Directory.CreateDirectory(folder);
        var images = GoldenUpFixture.Images;
        var sources = new Dictionary<string, (string, string)>();
        var lines = new List<string>();
        for (var i = 0; i < Copies; i++)
        {
            var source = images[i % images.Count];
            var task = Tasks[i / images.Count % Tasks.Length];
            var copy = $"copy_{i:000}.png";
            File.Copy(source, Path.Combine(folder, copy));
            var id = $"item-{i:000}";
            sources[id] = (source, task);
            lines.Add(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["id"] = id,
                ["image"] = copy,
                ["task"] = task,
                ["phrases"] = new[] { Phrase },
                ["text"] = Question,
                ["boxes"] = new[] { Box.Split(',').Select(double.Parse).ToArray() },
            }));
        }
        var manifest = Path.Combine(folder, "manifest.jsonl");
        File.WriteAllLines(manifest, lines);
        return (manifest, sources);
    }

    /// <summary>Each (golden image, task) through its own single-image command with <c>--json</c>.</summary>
    private async Task<Dictionary<(string, string), string>> OneAtATimeAsync()
    {
        var expected = new Dictionary<(string, string), string>();
        foreach (var image in GoldenUpFixture.Images)
        {
            foreach (var task in Tasks)
            {
                string[] command = task switch
                {
                    "caption" => ["caption", image],
                    "detailed" => ["caption", image, "--detailed"],
                    "ground" => ["ground", image, Phrase],
                    "refer" => ["refer", image, "--box", Box],
                    _ => ["ask", image, Question],
                };
                var run = await CliProcess.RunAsync([.. command, "--json", "--gateway", up.Gateway, "--api-key", "secret-key-0123456789", "--max-new-tokens", MaxNewTokens]);
                Assert.True(run.ExitCode == 0, $"{task} {image}: {run.Stderr}");
                expected[(image, task)] = GoldenUpFixture.Comparable(run.Stdout);
            }
        }
        return expected;
    }

    /// <summary>Every id once, every line OK and equal to the one-at-a-time result of its image and task.</summary>
    private static void AssertComplete(string output, Dictionary<string, (string Image, string Task)> sources, Dictionary<(string, string), string> expected)
    {
        var lines = File.ReadAllLines(output);
        Assert.Equal(Copies, lines.Length);
        var seen = new HashSet<string>();
        foreach (var line in lines)
        {
            var node = JsonNode.Parse(line)!;
            var id = node["id"]!.GetValue<string>();
            Assert.True(seen.Add(id), $"{id} is in {output} twice");
            Assert.Equal("OK", node["status"]!.GetValue<string>());
            Assert.Equal(sources[id].Task, node["task"]!.GetValue<string>());
            Assert.Equal(expected[sources[id]], GoldenUpFixture.Comparable(line));
        }
        Assert.Equal(sources.Keys.Order(), seen.Order());
    }

    private const int Sigint = 2;
    private const int Sigkill = 9;

    /// <summary>Starts the batch, sends <paramref name="signal"/> once <paramref name="lines"/> lines are written; returns the whole lines left and the exit code.</summary>
    private static async Task<(int Lines, int ExitCode)> StopAfterLinesAsync(string[] args, string output, int lines, int signal)
    {
        using var process = Process.Start(CliProcess.StartInfo(args))!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Poll.UntilAsync(() => File.Exists(output) && CountLines(output) >= lines, TimeSpan.FromSeconds(300), $"{lines} lines in {output}");
            Assert.Equal(0, Kill(process.Id, signal));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(cts.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        return (CountLines(output), process.ExitCode);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static int CountLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var count = 0;
        int b;
        while ((b = stream.ReadByte()) >= 0)
        {
            count += b == '\n' ? 1 : 0;
        }
        return count;
    }
}
