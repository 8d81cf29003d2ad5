using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Kosmos2.Cli.Tests;

/// <summary>A running <c>kosmos2 up</c>; knows the processes it started so the test can check none survive.</summary>
internal sealed class UpProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _stdout = new();
    private readonly System.Text.StringBuilder _stderr = new();

    private UpProcess(Process process) => _process = process;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

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
        // Tied to the test run like the services it starts: a test host killed mid-run leaves no cluster behind.
        var process = new Process { StartInfo = ParentDeath.Wrap(CliProcess.StartInfo(args, environment)) };
        ParentDeath.Start(process);
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

    /// <summary>The pid of the one process under up whose command line contains <paramref name="needle"/>, or null.</summary>
    public int? Child(string needle) =>
        Descendants(_process.Id).Where(pid => !IsZombie(pid)).Cast<int?>()
            .FirstOrDefault(pid => CommandLine(pid!.Value).Contains(needle, StringComparison.Ordinal));

    /// <summary>The process id of <c>kosmos2 up</c> itself.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Every live process under up.</summary>
    public IReadOnlyList<int> Children => Descendants(_process.Id).Where(pid => !IsZombie(pid)).ToList();

    /// <summary>SIGKILL to one process, as a crash.</summary>
    public static void KillHard(int pid) => Assert.Equal(0, Kill(pid, 9));

    /// <summary>Waits for up to exit by itself; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Whether a process is gone (or a zombie).</summary>
    public static bool IsGone(int pid) => !File.Exists($"/proc/{pid}/stat") || IsZombie(pid);

    private static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
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
