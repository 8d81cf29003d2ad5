using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Kosmos2.Cli;

/// <summary>
/// A process started by <c>kosmos2 up</c>: its output goes to a log file; progress and error lines of our
/// services (JSON console logs) are echoed to the terminal with the service name in front.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private volatile bool _stopping;

    private ChildProcess(string name, Process process, string logPath, int port)
    {
        Name = name;
        Port = port;
        _process = process;
        LogPath = logPath;
        // Appended: a restarted process writes after the lines of the one that crashed.
        _log = new StreamWriter(logPath, append: true) { AutoFlush = true };
    }

    public string Name { get; }

    public string LogPath { get; }

    /// <summary>The port it listens on (0 when not known).</summary>
    public int Port { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts a process; <paramref name="onCrashed"/> is called if it exits while nobody asked it to stop.</summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string> environment, string logDir, int port, Action<ChildProcess> onCrashed)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var child = new ChildProcess(name, process, Path.Combine(logDir, name + ".log"), port);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        process.Exited += (_, _) =>
        {
            if (!child._stopping)
            {
                onCrashed(child);
            }
        };
        if (!process.Start())
        {
            throw new InvalidOperationException($"{name} did not start.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        _stopping = true;
        if (_process.HasExited)
        {
            return;
        }
        _ = SendSignal(_process.Id, 15);
        using var cts = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>The last lines of the log, for a crash report.</summary>
    public string Tail(int lines)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_log)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
        if (Describe(line) is { } shown)
        {
            Console.Error.WriteLine($"  [{Name}] {shown}");
        }
    }

    /// <summary>Which log lines reach the terminal: our own services' information (progress) and anyone's errors.</summary>
    private static string? Describe(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var level = root.TryGetProperty("LogLevel", out var l) ? l.GetString() : null;
            var category = root.TryGetProperty("Category", out var c) ? c.GetString() ?? "" : "";
            var message = root.TryGetProperty("Message", out var m) ? m.GetString() : null;
            var ours = category.StartsWith("Kosmos2.", StringComparison.Ordinal);
            return level is "Error" or "Critical" || (ours && level is "Information" or "Warning") ? message : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>A free loopback port chosen by the OS.</summary>
    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        return ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
