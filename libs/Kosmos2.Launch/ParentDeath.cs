using System.Collections.Concurrent;
using System.Diagnostics;

namespace Kosmos2.Launch;

/// <summary>
/// Children that die with the process that started them, so a launcher killed with SIGKILL (a test run stopped, an
/// out-of-memory kill, a closed terminal's <c>kosmos2 up</c>) leaves no worker holding gigabytes behind: orphaned
/// full-size workers once filled this machine's memory and drove its load to 106.
/// <para>
/// Each child is started through util-linux's <c>setpriv --pdeathsig KILL -- program …</c>, which sets
/// <c>PR_SET_PDEATHSIG</c> and execs the program (same pid, same signals, same exit code). The kernel sends that
/// signal when the <i>thread</i> that forked the child exits, not the process (prctl(2)), and .NET's thread pool retires
/// idle threads; so every child is forked from one dedicated thread that lives as long as the process. Without
/// a <c>setpriv</c> that takes <c>--pdeathsig</c> (not Linux, util-linux missing or older than 2.33) children start as
/// before and can outlive their parent.
/// </para>
/// </summary>
public static class ParentDeath
{
    private static readonly BlockingCollection<(Process Process, TaskCompletionSource<bool> Started)> Requests = [];
    private static readonly Lazy<Thread> Launcher = new(() =>
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "kosmos2 child launcher" };
        thread.Start();
        return thread;
    });

    /// <summary>The <c>setpriv</c> executable, or null when children cannot be tied to their parent here.</summary>
    public static string? Wrapper { get; } = FindSetpriv();

    /// <summary>
    /// <paramref name="start"/> with its program run through the wrapper (when there is one), so that it is killed when
    /// this process dies. Start it with <see cref="Start"/>.
    /// </summary>
    public static ProcessStartInfo Wrap(ProcessStartInfo start)
    {
        if (Wrapper is null)
        {
            return start;
        }
        var arguments = start.ArgumentList.ToList();
        start.ArgumentList.Clear();
        foreach (var argument in (string[])["--pdeathsig", "KILL", "--", start.FileName, .. arguments])
        {
            start.ArgumentList.Add(argument);
        }
        start.FileName = Wrapper;
        return start;
    }

    /// <summary>Starts <paramref name="process"/> from the launcher thread (see the class summary); throws as <see cref="Process.Start()"/> does.</summary>
    public static void Start(Process process)
    {
        if (Wrapper is null)
        {
            StartHere(process, null);
            return;
        }
        var started = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Launcher.Value;
        Requests.Add((process, started));
        started.Task.GetAwaiter().GetResult();
    }

    private static void Run()
    {
        foreach (var (process, started) in Requests.GetConsumingEnumerable())
        {
            StartHere(process, started);
        }
    }

    private static void StartHere(Process process, TaskCompletionSource<bool>? started)
    {
        try
        {
            if (!process.Start())
            {
                throw new InvalidOperationException($"{process.StartInfo.FileName} did not start.");
            }
            started?.SetResult(true);
        }
        catch (Exception ex) when (started is not null)
        {
            started.SetException(ex);
        }
    }

    /// <summary>setpriv on PATH, if it takes <c>--pdeathsig</c> (util-linux 2.33 and later): tried once with <c>true</c>.</summary>
    private static string? FindSetpriv()
    {
        var setpriv = !OperatingSystem.IsLinux() ? null : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/bin")
            .Select(dir => Path.Combine(dir, "setpriv")).FirstOrDefault(File.Exists);
        if (setpriv is null)
        {
            return null;
        }
        try
        {
            var probe = new ProcessStartInfo(setpriv) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in (string[])["--pdeathsig", "KILL", "--", "true"])
            {
                probe.ArgumentList.Add(argument);
            }
            using var process = Process.Start(probe);
            return process is not null && process.WaitForExit(10_000) && process.ExitCode == 0 ? setpriv : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
