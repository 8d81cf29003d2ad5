using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Kosmos2.Testing;

namespace Kosmos2.Cli.Tests;

/// <summary><c>kosmos2 up</c> as a process: ready, serving client commands, and leaving nothing behind on SIGTERM.</summary>
public sealed class UpCommandTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Up_serves_client_commands_that_match_the_golden_cases_and_stops_everything_on_sigterm()
    {
        var port = FreePort.Next();
        var gateway = $"127.0.0.1:{port}";
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString(), "--api-key", "secret"]);

        foreach (var golden in GoldenCase.All())
        {
            var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--gateway", gateway, "--api-key", "secret"]);
            Assert.True(exit == 0, $"{golden.Name}: {stderr}");
            golden.AssertMatches(stdout);
            using var json = JsonDocument.Parse(stdout);
            Assert.True(json.RootElement.GetProperty("timings_ms").TryGetProperty("image_cache_hit", out _));
        }

        foreach (var golden in GoldenCase.All())
        {
            // --json with --logprobs: one log-probability per new token, and a confidence (or null, from the prompt) per box.
            var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--gateway", gateway, "--api-key", "secret", "--constrain-grounding", "--top-logprobs", "2"]);
            Assert.True(exit == 0, $"{golden.Name}: {stderr}");
            using var json = JsonDocument.Parse(stdout);
            var ids = json.RootElement.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(ids, json.RootElement.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
            Assert.All(json.RootElement.GetProperty("token_logprobs").EnumerateArray(), t => Assert.True(t.GetProperty("logprob").GetDouble() <= 0));
            Assert.All(json.RootElement.GetProperty("entities").EnumerateArray(),
                e => Assert.Equal(e.GetProperty("boxes").GetArrayLength(), e.GetProperty("box_logprobs").GetArrayLength()));
        }

        var refused = await CliProcess.RunAsync([.. GoldenCase.All()[0].GenerateArgs(), "--gateway", gateway, "--api-key", "wrong"]);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("UNAUTHENTICATED: ", refused.Stderr);

        var image = GoldenCase.All()[0].Image;
        var chat = await CliProcess.RunAsync(["chat", image, "--gateway", gateway, "--api-key", "secret", "--json", "--max-new-tokens", "6"],
            stdin: "What is in the picture?\nWhat is <phrase>this</phrase>? --box 10,20,200,150\n");
        Assert.True(chat.ExitCode == 0, chat.Stderr);
        var turns = chat.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, turns.Length);
        foreach (var turn in turns)
        {
            using var json = JsonDocument.Parse(turn);
            Assert.StartsWith("Question:", json.RootElement.GetProperty("clean_text").GetString());
            Assert.NotEmpty(json.RootElement.GetProperty("new_token_ids").EnumerateArray());
        }
        Assert.Contains("this</phrase><object><patch_index_", JsonDocument.Parse(turns[1]).RootElement.GetProperty("decoded_text").GetString());

        await up.StopAndAssertCleanAsync();
    }

    [Fact]
    public async Task Up_without_a_model_serves_its_own_tiny_checkpoint_and_answers_a_caption()
    {
        var cache = Directory.CreateTempSubdirectory("kosmos2-cache-").FullName;
        try
        {
            var port = FreePort.Next();
            await using var up = await UpProcess.StartAsync(["up", "--port", port.ToString()], new Dictionary<string, string> { ["XDG_CACHE_HOME"] = cache });
            Assert.Contains("RANDOM-WEIGHT", up.Stderr);

            var (exit, stdout, stderr) = await CliProcess.RunAsync(["caption", GoldenCase.All()[0].Image, "--gateway", $"127.0.0.1:{port}", "--json", "--max-new-tokens", "5"]);

            Assert.True(exit == 0, stderr);
            using var json = JsonDocument.Parse(stdout);
            Assert.Equal(5, json.RootElement.GetProperty("new_token_ids").GetArrayLength());
            Assert.True(File.Exists(Path.Combine(cache, "kosmos2", "tiny-random-v1", "model.safetensors")));
            await up.StopAndAssertCleanAsync();
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    /// <summary>A running <c>kosmos2 up</c>; knows the processes it started so the test can check none survive.</summary>
    private sealed class UpProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _stdout = new();
        private readonly System.Text.StringBuilder _stderr = new();

        private UpProcess(Process process) => _process = process;

        public string Stderr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public static async Task<UpProcess> StartAsync(string[] args, Dictionary<string, string>? environment = null)
        {
            var process = Process.Start(CliProcess.StartInfo(args, environment))!;
            var up = new UpProcess(process);
            process.OutputDataReceived += (_, e) => { lock (up._stdout) { up._stdout.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (up._stderr) { up._stderr.AppendLine(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await Poll.UntilAsync(() =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"kosmos2 up exited with {process.ExitCode}: {up.Stderr}");
                    }
                    lock (up._stdout)
                    {
                        return up._stdout.ToString().Contains("ready. Gateway at", StringComparison.Ordinal);
                    }
                }, TimeSpan.FromSeconds(180), "kosmos2 up to be ready");
            }
            catch
            {
                await up.DisposeAsync();
                throw;
            }
            return up;
        }

        /// <summary>SIGTERM; up must exit 0 and every process it started (its children) must be gone.</summary>
        public async Task StopAndAssertCleanAsync()
        {
            var children = Descendants(_process.Id);
            Assert.True(children.Count >= 4, $"expected redis + 3 services under kosmos2 up, found {children.Count}");
            Assert.Equal(0, Kill(_process.Id, 15));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await _process.WaitForExitAsync(cts.Token);
            Assert.Equal(0, _process.ExitCode);
            Assert.Contains("stopped", Stderr);
            var alive = children.Where(pid => File.Exists($"/proc/{pid}/stat") && !IsZombie(pid)).ToList();
            Assert.True(alive.Count == 0, $"still running after up stopped: {string.Join(", ", alive)}");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }

        private static List<int> Descendants(int root)
        {
            var parents = new Dictionary<int, int>();
            foreach (var dir in Directory.GetDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), out var pid) && TryParent(pid) is { } parent)
                {
                    parents[pid] = parent;
                }
            }
            var result = new List<int>();
            var frontier = new Queue<int>([root]);
            while (frontier.TryDequeue(out var current))
            {
                foreach (var (pid, parent) in parents)
                {
                    if (parent == current)
                    {
                        result.Add(pid);
                        frontier.Enqueue(pid);
                    }
                }
            }
            return result;
        }

        private static int? TryParent(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return int.Parse(fields[1]);
            }
            catch (IOException)
            {
                return null;
            }
        }

        private static bool IsZombie(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
            }
            catch (IOException)
            {
                return true;
            }
        }

        [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int Kill(int pid, int signal);
    }
}
