using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Kosmos2.Launch;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, owned by the test that starts it. It can be stopped and started
/// again on the same port to test outages. By default it keeps nothing (a cache); <see cref="StartAsync(bool, string?)"/>
/// with <c>persistent: true</c> runs it like the deployment's session store (append-only file fsynced every second,
/// noeviction), so a restart brings its data back.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly DirectoryInfo? _dataDir;
    private ServiceProcess? _process;

    private RedisServer(int port, bool persistent, string? password)
    {
        Port = port;
        Password = password;
        _dataDir = persistent ? Directory.CreateTempSubdirectory("kosmos2-redis-") : null;
    }

    public int Port { get; }

    /// <summary>The password clients must send (<c>requirepass</c>), or null for none.</summary>
    public string? Password { get; }

    /// <summary>StackExchange.Redis configuration string for this server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000" + (Password is null ? "" : $",password={Password}");

    public bool IsRunning => _process is { HasExited: false };

    public static Task<RedisServer> StartAsync() => StartAsync(persistent: false, password: null);

    /// <param name="persistent">Append-only file (everysec) in a temporary folder and noeviction, as the session store.</param>
    /// <param name="password">Require this password (AUTH), or null.</param>
    public static async Task<RedisServer> StartAsync(bool persistent, string? password)
    {
        var server = new RedisServer(FreePort.Next(), persistent, password);
        await server.RestartAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server (again) on its port and waits until it answers PING.</summary>
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            return;
        }
        if (_process is not null)
        {
            await _process.DisposeAsync().ConfigureAwait(false);
        }
        var executable = FindExecutable() ?? throw new InvalidOperationException(
            "redis-server is not installed: run `apt-get install -y redis-server` (.ci/run does this).");
        _process = ServiceProcess.StartProgram("redis", executable, Arguments(Port, _dataDir?.FullName, Password), new Dictionary<string, string>(), Port);
        await Poll.UntilAsync(PingAsync, TimeSpan.FromSeconds(10), $"redis-server on port {Port}").ConfigureAwait(false);
    }

    /// <summary>
    /// The command line of a loopback redis-server: with a <paramref name="dataDir"/> it is a session store (append-only
    /// file fsynced every second, so a restart loses at most the last second of writes; noeviction, as deployed),
    /// without one a cache that keeps nothing.
    /// </summary>
    public static IReadOnlyList<string> Arguments(int port, string? dataDir, string? password)
    {
        var args = CommonArguments(port, dataDir);
        args.AddRange(password is null ? ["--protected-mode", "no"] : ["--requirepass", password]);
        return args;
    }

    /// <summary>
    /// As <see cref="Arguments(int, string?, string?)"/>, the password read from a configuration file that only this user
    /// may read, written to <paramref name="configFile"/>: on the command line it would show in every local user's
    /// <c>ps</c> until Redis rewrites its process title.
    /// </summary>
    public static IReadOnlyList<string> ArgumentsWithPasswordFile(int port, string? dataDir, string password, string configFile)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var writer = new StreamWriter(configFile, options))
        {
            writer.Write($"requirepass \"{password}\"\n");
        }
        // The configuration file comes first; the options after it add to it.
        var args = CommonArguments(port, dataDir);
        args.Insert(0, configFile);
        return args;
    }

    private static List<string> CommonArguments(int port, string? dataDir)
    {
        List<string> args = ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", ""];
        args.AddRange(dataDir is not null
            ? ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--dir", dataDir]
            : ["--appendonly", "no"]);
        return args;
    }

    /// <summary>The redis-server executable on PATH (or /usr/bin, /usr/sbin), or null when it is not installed.</summary>
    public static string? FindExecutable()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Stops the server (an outage); <see cref="RestartAsync"/> brings it back, empty unless persistent.</summary>
    /// <param name="graceful">SIGTERM (what Kubernetes sends: Redis syncs its append-only file and exits) instead of SIGKILL.</param>
    public async Task StopAsync(bool graceful = false)
    {
        if (_process is null)
        {
            return;
        }
        if (graceful)
        {
            await _process.StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        _process.Crash();
        await _process.DisposeAsync().ConfigureAwait(false);
        _process = null;
    }

    /// <summary>Sends a raw PING and checks for PONG.</summary>
    public async Task<bool> PingAsync() => (await CommandAsync("PING").ConfigureAwait(false)).StartsWith("+PONG", StringComparison.Ordinal);

    /// <summary>One command over a fresh connection (after AUTH when a password is set); returns the first reply line,
    /// e.g. <c>+OK</c>, <c>:42</c> or <c>-ERR ...</c>.</summary>
    public async Task<string> CommandAsync(params string[] command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port).ConfigureAwait(false);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        if (Password is not null)
        {
            await stream.WriteAsync(Encode(["AUTH", Password])).ConfigureAwait(false);
            var auth = await reader.ReadLineAsync().ConfigureAwait(false);
            if (auth != "+OK")
            {
                throw new InvalidOperationException($"redis-server on port {Port} refused AUTH: {auth}");
            }
        }
        await stream.WriteAsync(Encode(command)).ConfigureAwait(false);
        return await reader.ReadLineAsync().ConfigureAwait(false) ?? "";
    }

    /// <summary>Keys in the current database.</summary>
    public async Task<long> DbSizeAsync()
    {
        var reply = await CommandAsync("DBSIZE").ConfigureAwait(false);
        return reply.StartsWith(':') ? long.Parse(reply.AsSpan(1), CultureInfo.InvariantCulture)
            : throw new InvalidOperationException($"DBSIZE answered '{reply}'.");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _dataDir?.Delete(recursive: true);
    }

    /// <summary>A command as a RESP array of bulk strings.</summary>
    private static byte[] Encode(string[] command)
    {
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"*{command.Length}\r\n");
        foreach (var part in command)
        {
            text.Append(CultureInfo.InvariantCulture, $"${Encoding.UTF8.GetByteCount(part)}\r\n{part}\r\n");
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
