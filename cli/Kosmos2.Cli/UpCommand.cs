using System.Runtime.InteropServices;
using Kosmos2.Launch;

namespace Kosmos2.Cli;

/// <summary>
/// <c>kosmos2 up</c>: Redis (when installed), the vision worker, the decoder worker and the gateway on
/// loopback; waits until all are healthy; prints the gRPC address and the web page's; Ctrl-C or SIGTERM stops everything it
/// started. A child that dies is reported with the end of its log and brings the cluster down.
/// </summary>
internal static class UpCommand
{
    public const string Usage = "up [--model-dir DIR] [--port P] [--http-port P] [--api-key K] [--dtype float32|bfloat16]";

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = CommandLine.Parse(args);
        cli.RejectUnknown("model-dir", "port", "http-port", "api-key", "dtype");
        var gatewayPort = cli.IntOption("port", 50051);
        // The page and the JSON API; a free port unless given, so several clusters (and test runs) never collide.
        var httpPort = cli.Option("http-port") is null ? FreePort.Next() : cli.IntOption("http-port", 0);
        if (httpPort is < 1 or > 65535)
        {
            throw new UsageException($"--http-port must be a TCP port, 1…65535 (got {httpPort}).");
        }
        var modelDir = cli.Option("model-dir") ?? DefaultModelDir();
        var dtype = cli.Option("dtype") ?? "bfloat16";
        if (!Directory.Exists(modelDir))
        {
            throw new UsageException($"--model-dir {modelDir} does not exist.");
        }
        if (cli.Option("api-key") is { Length: < Contracts.V1.ApiKeyRules.MinLength } shortKey)
        {
            throw new UsageException(
                $"--api-key has {shortKey.Length} characters; API keys need at least {Contracts.V1.ApiKeyRules.MinLength} (e.g. `openssl rand -hex 16`).");
        }

        var logDir = Path.Combine(Path.GetTempPath(), $"kosmos2-up-{Environment.ProcessId}");
        Directory.CreateDirectory(logDir);
        using var shutdown = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; shutdown.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; shutdown.Cancel(); });
        var supervisor = new Supervisor();
        try
        {
            Console.Error.WriteLine($"kosmos2 up: logs in {logDir}");
            // Fresh secrets per run, given only to the children: another local user who finds the ports still cannot
            // call the workers or read and write Redis.
            var redisPassword = ClusterEnvironment.NewSecret();
            var redisAddress = StartRedis(logDir, supervisor, redisPassword);
            // One server for both: sessions and the embedding cache (the deployment gives each its own).
            var common = ClusterEnvironment.Common(modelDir, dtype, redisAddress, redisAddress);
            if (redisAddress is not null)
            {
                common[ClusterEnvironment.RedisPassword] = redisPassword;
            }
            common[ClusterEnvironment.InternalSecret] = ClusterEnvironment.NewSecret();
            var vision = StartService(supervisor, "vision-worker", "Kosmos2.VisionWorker", FreePort.Next(), common, logDir);
            var decoder = StartService(supervisor, "decoder-worker", "Kosmos2.DecoderWorker", FreePort.Next(), common, logDir);
            var gatewayEnv = ClusterEnvironment.Gateway(common, modelDir, vision.Current.Address, [decoder.Current.Address]);
            gatewayEnv["Service__HttpPort"] = httpPort.ToString();
            if (cli.Option("api-key") is { } apiKey)
            {
                gatewayEnv["Auth__ApiKeys__0__Key"] = apiKey;
                gatewayEnv["Auth__ApiKeys__0__Tenant"] = "local";
            }
            var gateway = StartService(supervisor, "gateway", "Kosmos2.Gateway", gatewayPort, gatewayEnv, logDir);

            // A child that crashes while loading is restarted like any other; only one that keeps crashing ends the wait.
            var healthy = Task.WhenAll(new[] { vision, decoder, gateway }.Select(c => WaitHealthyAsync(c, shutdown.Token)));
            var first = await Task.WhenAny(healthy, supervisor.GaveUp, Task.Delay(Timeout.Infinite, shutdown.Token)).ConfigureAwait(false);
            if (first == supervisor.GaveUp)
            {
                return ReportGaveUp(await supervisor.GaveUp.ConfigureAwait(false));
            }
            if (shutdown.IsCancellationRequested)
            {
                return 130;
            }
            await healthy.ConfigureAwait(false);

            Console.WriteLine($"kosmos2 up: ready. Gateway at http://127.0.0.1:{gatewayPort}");
            Console.WriteLine($"  web page and HTTP/JSON API: http://127.0.0.1:{httpPort}/");
            var self = Environment.ProcessPath ?? "kosmos2";
            var keyFlag = cli.Option("api-key") is { } key ? $" --api-key {key}" : "";
            Console.WriteLine($"  try: {self} caption photo.png --gateway 127.0.0.1:{gatewayPort}{keyFlag} --out boxes.png");
            Console.WriteLine("  Ctrl-C stops the cluster. A process that exits is restarted; one that crashes " +
                              $"{Supervisor.MaxCrashes} times in a minute stops the cluster.");

            var ended = await Task.WhenAny(supervisor.GaveUp, Task.Delay(Timeout.Infinite, shutdown.Token)).ConfigureAwait(false);
            return ended == supervisor.GaveUp ? ReportGaveUp(await supervisor.GaveUp.ConfigureAwait(false)) : 0;
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            return 130;
        }
        finally
        {
            Console.Error.WriteLine("kosmos2 up: stopping…");
            // Gateway first so no new work reaches the workers, Redis last.
            await supervisor.DisposeAsync().ConfigureAwait(false);
            Console.Error.WriteLine("kosmos2 up: stopped.");
        }
    }

    /// <summary>Without --model-dir: a tiny random-weight checkpoint written on first use (meaningless text, real pipeline).</summary>
    private static string DefaultModelDir()
    {
        var dir = TinyCheckpoint.EnsureCreated();
        Console.Error.WriteLine($"kosmos2 up: no --model-dir: serving a TINY RANDOM-WEIGHT model ({dir}); its output is meaningless text.");
        Console.Error.WriteLine("  For real captions download microsoft/kosmos-2-patch14-224 (config.json, model.safetensors, sentencepiece.bpe.model, ...) and pass --model-dir DIR.");
        return dir;
    }

    private static Supervisor.Supervised StartService(Supervisor supervisor, string folder, string name, int port, Dictionary<string, string> environment, string logDir)
    {
        var assembly = RepoPaths.BuiltAssembly(folder, name);
        return supervisor.Start(folder, onCrash => ServiceProcess.Start(folder, assembly, environment, port, Logged(folder, logDir, onCrash)));
    }

    /// <summary>Output to <c>{logDir}/{name}.log</c>, progress and errors echoed, a crash reported to the supervisor.</summary>
    private static ProcessOptions Logged(string name, string logDir, Action<ServiceProcess> onCrash) =>
        new() { LogPath = Path.Combine(logDir, name + ".log"), OnLine = LogEcho.For(name), OnExitedUnasked = onCrash };

    /// <summary>
    /// Starts redis-server on a free port when it is installed; returns its address, or null (in-process cache). It
    /// keeps an append-only file (fsync every second) in the log folder, so a Redis that crashes and is restarted comes
    /// back with the chat sessions it held; at most the last second of writes is lost. It requires
    /// <paramref name="password"/>, also after a restart.
    /// </summary>
    private static string? StartRedis(string logDir, Supervisor supervisor, string password)
    {
        if (RedisServer.FindExecutable() is not { } redis)
        {
            Console.Error.WriteLine("kosmos2 up: warning: redis-server is not installed; using in-process caches " +
                                    "(nothing is shared or kept across restarts). Install it with: apt-get install -y redis-server");
            return null;
        }
        var port = FreePort.Next();
        var data = Directory.CreateDirectory(Path.Combine(logDir, "redis-data")).FullName;
        var arguments = RedisServer.ArgumentsWithPasswordFile(port, data, password, Path.Combine(logDir, "redis.conf"));
        supervisor.Start("redis", onCrash => ServiceProcess.StartProgram("redis", redis, arguments,
            new Dictionary<string, string>(), port, Logged("redis", logDir, onCrash)));
        return $"127.0.0.1:{port}";
    }

    private static async Task WaitHealthyAsync(Supervisor.Supervised child, CancellationToken cancellationToken)
    {
        // By address, not by process: a child that crashes while loading is restarted on the same port.
        await HealthProbe.WaitServingAsync(child.Current.Address, cancellationToken).ConfigureAwait(false);
        Console.Error.WriteLine($"  [{child.Name}] healthy at {child.Current.Address}");
    }

    private static int ReportGaveUp(Supervisor.Supervised child)
    {
        var process = child.Current;
        Console.Error.WriteLine($"kosmos2 up: {child.Name} crashed {Supervisor.MaxCrashes} times within a minute (last exit code " +
                                $"{process.ExitCode}); stopping the cluster. Last lines of {process.LogPath}:");
        Console.Error.WriteLine(process.Tail(20));
        return 1;
    }
}
