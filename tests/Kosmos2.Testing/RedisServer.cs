using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Kosmos2.Testing;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, without persistence, owned by the test that
/// starts it. It can be stopped and started again on the same port to test outages.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>StackExchange.Redis configuration string for this server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000";

    public bool IsRunning => _process is { HasExited: false };

    public static async Task<RedisServer> StartAsync() => await StartAsync(appendOnlyDir: null).ConfigureAwait(false);

    /// <summary>
    /// With <paramref name="appendOnlyDir"/>, the server keeps an append-only file there (fsync every second), so a
    /// crash and <see cref="RestartAsync"/> bring the data back, as <c>kosmos2 up</c> runs it.
    /// </summary>
    public static async Task<RedisServer> StartAsync(string? appendOnlyDir)
    {
        var server = new RedisServer(FreePort.Next()) { _appendOnlyDir = appendOnlyDir };
        await server.RestartAsync().ConfigureAwait(false);
        return server;
    }

    private string? _appendOnlyDir;

    /// <summary>SIGKILL, as a crash (the append-only file keeps what was written).</summary>
    public void Crash()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>Starts the server (again) on its port and waits until it answers PING.</summary>
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            return;
        }
        var executable = FindExecutable();
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] persistence = _appendOnlyDir is null
            ? ["--appendonly", "no"]
            : ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", _appendOnlyDir];
        foreach (var arg in (string[])["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", .. persistence, "--protected-mode", "no"])
        {
            start.ArgumentList.Add(arg);
        }
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Poll.UntilAsync(PingAsync, TimeSpan.FromSeconds(10), $"redis-server on port {Port}").ConfigureAwait(false);
    }

    /// <summary>Stops the server (an outage); <see cref="RestartAsync"/> brings it back empty.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
        _process.Dispose();
        _process = null;
    }

    /// <summary>Sends a raw PING and checks for PONG.</summary>
    public async Task<bool> PingAsync()
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port).ConfigureAwait(false);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray()).ConfigureAwait(false);
        var buffer = new byte[16];
        var read = await stream.ReadAsync(buffer).ConfigureAwait(false);
        return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private static string FindExecutable()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            "redis-server is not installed: run `apt-get install -y redis-server` (.ci/run does this).");
    }
}
