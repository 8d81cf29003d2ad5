using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Net.Client;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// <c>kosmos2 up</c> gives its children secrets of its own: its workers refuse a local process that calls them without
/// the internal secret, its Redis refuses commands without the password, neither secret shows on a command line, and
/// the cluster still serves.
/// </summary>
public sealed partial class UpSecretsTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Up_guards_its_workers_and_its_redis_with_secrets_of_its_own_and_still_serves()
    {
        var port = FreePort.Next();
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString()]);

        var golden = GoldenCase.All()[0];
        var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--gateway", $"127.0.0.1:{port}"]);
        Assert.True(exit == 0, stderr);
        golden.AssertMatches(stdout);

        using (var vision = GrpcChannel.ForAddress(WorkerAddress(up, "vision-worker")))
        {
            var request = new EncodeRequest { Image = Google.Protobuf.ByteString.CopyFrom(File.ReadAllBytes(golden.Image)) };
            var refused = await Assert.ThrowsAsync<RpcException>(() => new VisionWorker.VisionWorkerClient(vision).EncodeAsync(request).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        }
        using (var decoder = GrpcChannel.ForAddress(WorkerAddress(up, "decoder-worker")))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => new DecoderWorker.DecoderWorkerClient(decoder).GetInfoAsync(new DecoderInfoRequest()).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        }

        var redis = up.Child("redis-server") ?? throw new InvalidOperationException("no redis-server under up");
        Assert.StartsWith("-NOAUTH", await PingAsync(RedisPort(CommandLine(redis))), StringComparison.Ordinal);

        // Secrets travel in the children's environment (readable by this user only) or a file, never as arguments,
        // which every local user can list.
        var gateway = up.Child("Kosmos2.Gateway") ?? throw new InvalidOperationException("no gateway under up");
        var environment = Environment(gateway);
        var secrets = new[] { ClusterEnvironment.InternalSecret, ClusterEnvironment.RedisPassword }
            .Select(name => environment.GetValueOrDefault(name) ?? throw new InvalidOperationException($"up gave the gateway no {name}"))
            .ToList();
        Assert.Equal(secrets.Count, secrets.Distinct(StringComparer.Ordinal).Count());
        foreach (var pid in up.Children)
        {
            var commandLine = CommandLine(pid);
            Assert.DoesNotContain("requirepass", commandLine, StringComparison.OrdinalIgnoreCase);
            Assert.All(secrets, secret => Assert.DoesNotContain(secret, commandLine, StringComparison.Ordinal));
        }

        await up.StopAndAssertCleanAsync();
    }

    /// <summary>The address up reported for <paramref name="name"/> ("[name] healthy at http://127.0.0.1:PORT").</summary>
    private static string WorkerAddress(UpProcess up, string name)
    {
        var match = Regex.Match(up.Stderr, $@"\[{Regex.Escape(name)}\] healthy at (?<address>\S+)");
        Assert.True(match.Success, $"up did not report {name}'s address:\n{up.Stderr}");
        return match.Groups["address"].Value;
    }

    /// <summary>redis-server's port: "--port N" as started, or "HOST:PORT" once it has rewritten its process title.</summary>
    private static int RedisPort(string commandLine)
    {
        var parts = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var flag = Array.IndexOf(parts, "--port");
        if (flag >= 0 && flag + 1 < parts.Length)
        {
            return int.Parse(parts[flag + 1]);
        }
        var title = TitlePort().Match(commandLine);
        Assert.True(title.Success, $"no port in redis-server's command line '{commandLine}'");
        return int.Parse(title.Groups["port"].Value);
    }

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

    private static Dictionary<string, string> Environment(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(v => v.Split('=', 2)).Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0], StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last()[1], StringComparer.Ordinal);

    /// <summary>An unauthenticated PING (inline command); returns the first reply line.</summary>
    private static async Task<string> PingAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("PING\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync() ?? "";
    }

    [GeneratedRegex(@"127\.0\.0\.1:(?<port>\d+)")]
    private static partial Regex TitlePort();
}
