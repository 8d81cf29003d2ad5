using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Net.Client;

namespace Kosmos2.Launch;

/// <summary>
/// A process of the system started as it really runs (one of our services as <c>dotnet Service.dll</c>, or
/// redis-server), configured through environment variables and arguments only, listening on a loopback port. Its last
/// lines are kept for failure messages (and appended to a log file when given one); stopping sends SIGTERM, then kills
/// it if it does not exit; it is killed when the process that started it dies (<see cref="ParentDeath"/>). One home
/// for <c>kosmos2 up</c>, the tests and the benchmarks.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private const int KeptLines = 400;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly StreamWriter? _log;
    private readonly Action<string>? _onLine;
    private readonly Lazy<GrpcChannel> _channel;
    private volatile bool _stopping;

    private ServiceProcess(string name, Process process, int port, string? logPath, Action<string>? onLine)
    {
        Name = name;
        _process = process;
        Port = port;
        LogPath = logPath;
        _onLine = onLine;
        // Appended: a restarted process writes after the lines of the one that crashed.
        _log = logPath is null ? null : new StreamWriter(logPath, append: true) { AutoFlush = true };
        _channel = new Lazy<GrpcChannel>(() => GrpcChannel.ForAddress(Address));
    }

    public string Name { get; }

    public int Port { get; }

    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>A channel to the service (plain HTTP/2), made on first use.</summary>
    public GrpcChannel Channel => _channel.Value;

    /// <summary>The file its output is appended to, or null.</summary>
    public string? LogPath { get; }

    public bool HasExited => _process.HasExited;

    public int ProcessId => _process.Id;

    public int ExitCode => _process.ExitCode;

    /// <summary>The last lines the process printed.</summary>
    public string RecentOutput => Tail(80);

    /// <summary>The last <paramref name="lines"/> lines the process printed.</summary>
    public string Tail(int lines) => string.Join('\n', _output.TakeLast(lines));

    /// <summary>
    /// Starts <paramref name="assemblyPath"/> with <c>Service__Host=127.0.0.1</c>, a free port (or <paramref name="port"/>),
    /// no metrics port and <paramref name="environment"/>.
    /// </summary>
    public static ServiceProcess Start(string name, string assemblyPath, IReadOnlyDictionary<string, string>? environment = null, int? port = null,
        ProcessOptions? options = null)
    {
        var chosenPort = port ?? FreePort.Next();
        var full = new Dictionary<string, string>
        {
            ["Service__Host"] = "127.0.0.1",
            ["Service__Port"] = chosenPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Service__MetricsPort"] = "0",
            ["DOTNET_ENVIRONMENT"] = "Production",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            full[key] = value;
        }
        return StartProgram(name, "dotnet", [assemblyPath], full, chosenPort,
            (options ?? new ProcessOptions()) with { WorkingDirectory = Path.GetDirectoryName(assemblyPath) });
    }

    /// <summary>
    /// Starts <paramref name="assemblyPath"/> with exactly <paramref name="environment"/> as its configuration, as a pod
    /// gets it from its manifest: nothing is added (not even <c>Service__Host</c>), and configuration this process
    /// inherited (<c>Section__Key</c>, <c>OTEL_*</c>, <c>ASPNETCORE_*</c>, the host's <c>DOTNET_ENVIRONMENT</c>/URLs)
    /// is removed so it cannot fill in what the manifest left out. The gRPC port is <c>Service__Port</c>, which
    /// must therefore be given (on loopback: <c>Service__Host=127.0.0.1</c>).
    /// </summary>
    public static ServiceProcess StartWithExactEnvironment(string name, string assemblyPath, IReadOnlyDictionary<string, string> environment)
    {
        if (!environment.TryGetValue("Service__Port", out var portText) || !int.TryParse(portText, out var port))
        {
            throw new ArgumentException($"{name}: the environment sets no numeric Service__Port.", nameof(environment));
        }
        return StartProgram(name, "dotnet", [assemblyPath], environment, port,
            new ProcessOptions { WorkingDirectory = Path.GetDirectoryName(assemblyPath), DropInheritedConfiguration = true });
    }

    /// <summary>Starts a service (as <see cref="Start"/>) and waits until it is SERVING; stops it again when it never is.</summary>
    public static async Task<ServiceProcess> StartHealthyAsync(string name, string assemblyPath, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var service = Start(name, assemblyPath, environment);
        try
        {
            await service.WaitHealthyAsync(timeout).ConfigureAwait(false);
        }
        catch
        {
            await service.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return service;
    }

    /// <summary>Starts any program listening on <paramref name="port"/> (0 when none or unknown).</summary>
    public static ServiceProcess StartProgram(string name, string fileName, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string> environment, int port, ProcessOptions? options = null)
    {
        options ??= new ProcessOptions();
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // A child reading the terminal would steal the keystrokes of the `kosmos2 up` that started it.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (options.WorkingDirectory is { } directory)
        {
            start.WorkingDirectory = directory;
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        if (options.DropInheritedConfiguration)
        {
            foreach (var key in start.Environment.Keys.Where(IsInheritedConfiguration).ToList())
            {
                start.Environment.Remove(key);
            }
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var process = new Process { StartInfo = ParentDeath.Wrap(start), EnableRaisingEvents = options.OnExitedUnasked is not null };
        var service = new ServiceProcess(name, process, port, options.LogPath, options.OnLine);
        process.OutputDataReceived += (_, e) => service.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => service.Keep(e.Data);
        if (options.OnExitedUnasked is { } onExited)
        {
            process.Exited += (_, _) =>
            {
                if (!service._stopping)
                {
                    onExited(service);
                }
            };
        }
        // Killed with this process if it dies without stopping it.
        ParentDeath.Start(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
    }

    /// <summary>Waits until <c>grpc.health.v1.Health/Check</c> answers SERVING; fails with its output when it exits or times out.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await HealthProbe.WaitServingAsync(Address, cts.Token, () => _process.HasExited
                ? throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}.")
                : true).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new InvalidOperationException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {Name} to report SERVING.\n--- {Name} output ---\n{RecentOutput}");
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException($"{ex.Message}\n--- {Name} output ---\n{RecentOutput}", ex);
        }
    }

    /// <summary>For a process expected to stop on its own (refused configuration): its exit code, or a timeout with its output.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} still runs after {timeout.TotalSeconds:F0} s.\n--- {Name} output ---\n{RecentOutput}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, as a crash; returns once the process is gone.</summary>
    public void Crash()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    /// <summary>Sends SIGTERM and waits for a clean exit, killing it after <paramref name="grace"/>; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan grace)
    {
        _stopping = true;
        if (!_process.HasExited)
        {
            _ = Signals.Terminate(_process.Id);
            using var cts = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (_channel.IsValueCreated)
        {
            _channel.Value.Dispose();
        }
        await StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _process.Dispose();
        if (_log is not null)
        {
            lock (_log)
            {
                _log.Dispose();
            }
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > KeptLines && _output.TryDequeue(out _))
        {
        }
        if (_log is not null)
        {
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
        }
        _onLine?.Invoke(line);
    }

    /// <summary>Inherited variables that ASP.NET Core or OpenTelemetry would read as configuration: "__" is a section
    /// separator (also under the DOTNET_/ASPNETCORE_ prefixes), and the host reads its environment name and URLs.</summary>
    private static bool IsInheritedConfiguration(string key) =>
        key.Contains("__", StringComparison.Ordinal)
        || key.StartsWith("OTEL_", StringComparison.Ordinal)
        || key.StartsWith("ASPNETCORE_", StringComparison.Ordinal)
        || key is "DOTNET_ENVIRONMENT" or "DOTNET_URLS" or "DOTNET_HTTP_PORTS" or "DOTNET_HTTPS_PORTS" or "DOTNET_CONTENTROOT";
}

/// <summary>How <see cref="ServiceProcess.StartProgram"/> runs a process beyond its command line and environment.</summary>
public sealed record ProcessOptions
{
    public string? WorkingDirectory { get; init; }

    /// <summary>Append every line to this file (kept across restarts of the same service).</summary>
    public string? LogPath { get; init; }

    /// <summary>Called with every line it prints (e.g. to echo progress to a terminal).</summary>
    public Action<string>? OnLine { get; init; }

    /// <summary>Called when it exits without having been asked to stop (a crash), to restart it.</summary>
    public Action<ServiceProcess>? OnExitedUnasked { get; init; }

    /// <summary>Remove configuration this process inherited (see <see cref="ServiceProcess.StartWithExactEnvironment"/>).</summary>
    public bool DropInheritedConfiguration { get; init; }
}
