using System.Runtime.InteropServices;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Kosmos2.Cli;

/// <summary>
/// <c>kosmos2 up</c>: Redis (when installed), the vision worker, the decoder worker and the gateway on
/// loopback; waits until all are healthy; prints the address; Ctrl-C or SIGTERM stops everything it
/// started. A child that dies is reported with the end of its log and brings the cluster down.
/// </summary>
internal static class UpCommand
{
    public const string Usage = "kosmos2 up [--model-dir DIR] [--port P] [--api-key K] [--dtype float32|bfloat16]";

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = CommandLine.Parse(args);
        cli.RejectUnknown("model-dir", "port", "api-key", "dtype");
        var gatewayPort = cli.IntOption("port", 50051);
        var modelDir = cli.Option("model-dir") ?? DefaultModelDir();
        var dtype = cli.Option("dtype") ?? "bfloat16";
        if (!Directory.Exists(modelDir))
        {
            throw new UsageException($"--model-dir {modelDir} does not exist.");
        }

        var logDir = Path.Combine(Path.GetTempPath(), $"kosmos2-up-{Environment.ProcessId}");
        Directory.CreateDirectory(logDir);
        var children = new List<ChildProcess>();
        using var shutdown = new CancellationTokenSource();
        var crashed = new TaskCompletionSource<ChildProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; shutdown.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; shutdown.Cancel(); });

        ChildProcess Track(ChildProcess child)
        {
            children.Add(child);
            child.Crashed += c => crashed.TrySetResult(c);
            return child;
        }

        try
        {
            Console.Error.WriteLine($"kosmos2 up: logs in {logDir}");
            var redisAddress = StartRedis(logDir, Track);
            var visionPort = ChildProcess.FreePort();
            var decoderPort = ChildProcess.FreePort();
            var common = new Dictionary<string, string>
            {
                ["Service__Host"] = "127.0.0.1",
                ["Service__MetricsPort"] = "0",
                ["DOTNET_ENVIRONMENT"] = "Production",
            };
            if (redisAddress is not null)
            {
                // One server for both: sessions and the embedding cache (the deployment gives each its own).
                common["Redis__Sessions"] = redisAddress;
                common["Redis__Cache"] = redisAddress;
            }
            common["Vision__ModelDir"] = Path.GetFullPath(modelDir);
            common["Decoder__ModelDir"] = Path.GetFullPath(modelDir);
            common["Vision__DType"] = dtype;
            common["Decoder__DType"] = dtype;

            var vision = Track(StartService("vision-worker", "Kosmos2.VisionWorker", visionPort, common, logDir));
            var decoder = Track(StartService("decoder-worker", "Kosmos2.DecoderWorker", decoderPort, common, logDir));
            var gatewayEnv = new Dictionary<string, string>(common)
            {
                ["Gateway__TokenizerDir"] = Path.GetFullPath(modelDir),
                ["Gateway__VisionWorkers"] = $"http://127.0.0.1:{visionPort}",
                ["Gateway__DecoderWorkers"] = $"http://127.0.0.1:{decoderPort}",
            };
            if (cli.Option("api-key") is { } apiKey)
            {
                gatewayEnv["Auth__ApiKeys__0__Key"] = apiKey;
                gatewayEnv["Auth__ApiKeys__0__Tenant"] = "local";
            }
            var gateway = Track(StartService("gateway", "Kosmos2.Gateway", gatewayPort, gatewayEnv, logDir));

            var healthy = Task.WhenAll(new[] { vision, decoder, gateway }.Select(c => WaitHealthyAsync(c, shutdown.Token)));
            var first = await Task.WhenAny(healthy, crashed.Task, Task.Delay(Timeout.Infinite, shutdown.Token)).ConfigureAwait(false);
            if (first == crashed.Task)
            {
                return ReportCrash(await crashed.Task.ConfigureAwait(false));
            }
            if (shutdown.IsCancellationRequested)
            {
                return 130;
            }
            await healthy.ConfigureAwait(false);

            Console.WriteLine($"kosmos2 up: ready. Gateway at http://127.0.0.1:{gatewayPort}");
            var self = Environment.ProcessPath ?? "kosmos2";
            var keyFlag = cli.Option("api-key") is { } key ? $" --api-key {key}" : "";
            Console.WriteLine($"  try: {self} caption photo.png --gateway 127.0.0.1:{gatewayPort}{keyFlag} --out boxes.png");
            Console.WriteLine("  Ctrl-C stops the cluster.");

            var ended = await Task.WhenAny(crashed.Task, Task.Delay(Timeout.Infinite, shutdown.Token)).ConfigureAwait(false);
            return ended == crashed.Task ? ReportCrash(await crashed.Task.ConfigureAwait(false)) : 0;
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            return 130;
        }
        finally
        {
            Console.Error.WriteLine("kosmos2 up: stopping…");
            // Gateway first so no new work reaches the workers, Redis last.
            foreach (var child in Enumerable.Reverse(children))
            {
                await child.StopAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
                child.Dispose();
            }
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

    private static ChildProcess StartService(string folder, string name, int port, Dictionary<string, string> environment, string logDir)
    {
        var env = new Dictionary<string, string>(environment) { ["Service__Port"] = port.ToString() };
        return ChildProcess.Start(folder, "dotnet", [RepoLayout.ServiceAssembly(folder, name)], env, logDir, port);
    }

    /// <summary>Starts redis-server on a free port when it is installed; returns its address, or null (in-process cache).</summary>
    private static string? StartRedis(string logDir, Func<ChildProcess, ChildProcess> track)
    {
        var redis = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server" }.FirstOrDefault(File.Exists);
        if (redis is null)
        {
            Console.Error.WriteLine("kosmos2 up: warning: redis-server is not installed; using in-process caches " +
                                    "(nothing is shared or kept across restarts). Install it with: apt-get install -y redis-server");
            return null;
        }
        var port = ChildProcess.FreePort();
        track(ChildProcess.Start("redis", redis,
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            new Dictionary<string, string>(), logDir, port));
        return $"127.0.0.1:{port}";
    }

    private static async Task WaitHealthyAsync(ChildProcess child, CancellationToken cancellationToken)
    {
        var address = $"http://127.0.0.1:{child.Port}";
        using var channel = GrpcChannel.ForAddress(address);
        var health = new Health.HealthClient(channel);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    Console.Error.WriteLine($"  [{child.Name}] healthy at {address}");
                    return;
                }
            }
            catch (Grpc.Core.RpcException)
            {
                // Not listening yet, or loading: try again.
            }
            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    private static int ReportCrash(ChildProcess child)
    {
        Console.Error.WriteLine($"kosmos2 up: {child.Name} exited unexpectedly with code {child.ExitCode}. Last lines of {child.LogPath}:");
        Console.Error.WriteLine(child.Tail(20));
        return 1;
    }
}
