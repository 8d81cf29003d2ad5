using System.Diagnostics;
using System.Text.Json;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// A gRPC client no one here wrote — Node's @grpc/grpc-js with @grpc/proto-loader reading protos/ as they are — sends
/// hostile requests (random and truncated images, huge declared sizes, junk hashes, lone surrogates, NaN and inverted
/// boxes, 5,000 regions, absurd sampling, 8 MiB bodies, bogus sessions), 16 in flight, to the whole cluster. Every answer
/// must be OK or a status that names the client's mistake, and every service must still be running afterwards.
/// Needs node and npm; .ci/run installs the client's packages (tests/interop-node).
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class NodeInteropTests(ClusterFixture fixture)
{
    private const int Requests = 1000;

    [Fact]
    public async Task Hostile_requests_from_a_node_client_get_only_statuses_that_name_the_mistake_and_every_service_survives()
    {
        var client = Path.Combine(RepoPaths.RepoRoot, "tests", "interop-node");
        if (!Directory.Exists(Path.Combine(client, "node_modules", "@grpc", "grpc-js")))
        {
            Assert.Equal(0, (await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], client, TimeSpan.FromMinutes(5))).ExitCode);
        }
        var gateway = $"127.0.0.1:{fixture.Cluster.Gateway.Port}";

        var (exit, stdout, stderr) = await RunAsync("node", ["hostile.mjs", gateway, Requests.ToString(), "16", ClusterFixture.KeyA], client, TimeSpan.FromMinutes(8));

        Assert.True(exit == 0, $"node client exit {exit}: {stdout}\n{stderr}");
        using var summary = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        Assert.Equal(Requests, summary.RootElement.GetProperty("total").GetInt32());
        Assert.Equal(0, summary.RootElement.GetProperty("unexpected").GetInt32());
        var statuses = summary.RootElement.GetProperty("by_status").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        Assert.True(statuses.GetValueOrDefault("OK") > 0, stdout);
        Assert.True(statuses.GetValueOrDefault("INVALID_ARGUMENT") > 0, stdout);
        Assert.False(fixture.Cluster.Gateway.HasExited || fixture.Cluster.Vision.HasExited || fixture.Cluster.Decoder.HasExited, "a service died under hostile load");
        await fixture.Cluster.Gateway.WaitHealthyAsync(TimeSpan.FromSeconds(10));
        await fixture.Cluster.Vision.WaitHealthyAsync(TimeSpan.FromSeconds(10));
        await fixture.Cluster.Decoder.WaitHealthyAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, string[] args, string directory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start: install Node.js and npm.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {timeout}: {await stdout}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
