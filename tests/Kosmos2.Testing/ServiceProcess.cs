using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Kosmos2.Testing;

/// <summary>
/// One of our services started as it really runs: <c>dotnet Service.dll</c> in its own process, configured
/// through environment variables only, listening on a free loopback port. Its output is kept for failure
/// messages; disposing sends SIGTERM, then kills it if it does not exit.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ServiceProcess(string name, Process process, int port)
    {
        Name = name;
        _process = process;
        Port = port;
        Channel = GrpcChannel.ForAddress(Address);
    }

    public string Name { get; }

    public int Port { get; }

    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>A channel to the service (plain HTTP/2).</summary>
    public GrpcChannel Channel { get; }

    public bool HasExited => _process.HasExited;

    public int ProcessId => _process.Id;

    /// <summary>The last lines the service printed.</summary>
    public string RecentOutput => string.Join('\n', _output.TakeLast(80));

    /// <summary>Starts <paramref name="assemblyPath"/> with <c>Service__Host=127.0.0.1</c>, a free port and <paramref name="environment"/>.</summary>
    public static ServiceProcess Start(string name, string assemblyPath, IReadOnlyDictionary<string, string>? environment = null, int? port = null)
    {
        var chosenPort = port ?? FreePort.Next();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(assemblyPath)!,
        };
        start.ArgumentList.Add(assemblyPath);
        start.Environment["Service__Host"] = "127.0.0.1";
        start.Environment["Service__Port"] = chosenPort.ToString();
        start.Environment["Service__MetricsPort"] = "0";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start.");
        var service = new ServiceProcess(name, process, chosenPort);
        process.OutputDataReceived += (_, e) => service.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => service.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
    }

    /// <summary>
    /// Starts <paramref name="assemblyPath"/> with exactly <paramref name="environment"/> as its configuration, as a pod
    /// gets it from its manifest: nothing is added (not even <c>Service__Host</c>), and configuration this test process
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
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(assemblyPath)!,
        };
        start.ArgumentList.Add(assemblyPath);
        foreach (var key in start.Environment.Keys.Where(IsInheritedConfiguration).ToList())
        {
            start.Environment.Remove(key);
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start.");
        var service = new ServiceProcess(name, process, port);
        process.OutputDataReceived += (_, e) => service.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => service.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
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

    /// <summary>Waits until <c>grpc.health.v1.Health/Check</c> answers SERVING.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var health = new Health.HealthClient(Channel);
        try
        {
            await Poll.UntilAsync(async () =>
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}.");
                }
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ConfigureAwait(false);
                return reply.Status == HealthCheckResponse.Types.ServingStatus.Serving;
            }, timeout, $"{Name} to report SERVING", intervalMs: 100).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
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

    /// <summary>Sends SIGTERM and waits for a clean exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
            using var cts = new CancellationTokenSource(timeout);
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
        Channel.Dispose();
        await StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > 400 && _output.TryDequeue(out _))
        {
        }
    }

    /// <summary>Inherited variables that ASP.NET Core or OpenTelemetry would read as configuration: "__" is a section
    /// separator (also under the DOTNET_/ASPNETCORE_ prefixes), and the host reads its environment name and URLs.</summary>
    private static bool IsInheritedConfiguration(string key) =>
        key.Contains("__", StringComparison.Ordinal)
        || key.StartsWith("OTEL_", StringComparison.Ordinal)
        || key.StartsWith("ASPNETCORE_", StringComparison.Ordinal)
        || key is "DOTNET_ENVIRONMENT" or "DOTNET_URLS" or "DOTNET_HTTP_PORTS" or "DOTNET_HTTPS_PORTS" or "DOTNET_CONTENTROOT";

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
