using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Health.V1;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>
/// Only the gateway may call the decoder worker: with a secret configured (here from a file, as a mounted Secret),
/// Generate and GetInfo need one of its secrets in the internal header; health stays open for the kubelet. A secret
/// file that is configured but missing stops the worker instead of turning the check off.
/// </summary>
public sealed class InternalCallAuthTests
{
    private static string EnvironmentName(string setting) => setting.Replace(":", "__", StringComparison.Ordinal);

    private static Metadata Header(string secret) => new() { { InternalCallAuth.Header, secret } };

    private static string NewSecret() => Convert.ToHexString(RandomNumberGenerator.GetBytes(32));

    [Fact]
    public async Task Generate_and_GetInfo_need_one_of_the_secrets_of_the_secret_file_and_health_does_not()
    {
        // Two lines, as during a rotation: the one callers send first, and the one being retired.
        var (current, previous) = (NewSecret(), NewSecret());
        var dir = Directory.CreateTempSubdirectory("kosmos2-internal-secret-");
        try
        {
            var file = Path.Combine(dir.FullName, "secret");
            await File.WriteAllTextAsync(file, $"{current}\n{previous}\n");
            await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string>
            {
                [EnvironmentName(InternalSecrets.SecretFileSetting)] = file,
            });
            var request = GoldenPrompts.Cases()[0].ToRequest(maxNewTokens: 2);

            var health = await new Health.HealthClient(worker.Process.Channel).CheckAsync(new HealthCheckRequest());
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

            var missing = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(request));
            Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
            Assert.Contains(InternalCallAuth.Header, missing.Status.Detail, StringComparison.Ordinal);
            var wrong = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(request, headers: Header(NewSecret())));
            Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
            // Both secrets on one line is neither of them.
            var joined = await Assert.ThrowsAsync<RpcException>(() => worker.GenerateAsync(request, headers: Header(current + previous)));
            Assert.Equal(StatusCode.Unauthenticated, joined.StatusCode);
            var info = await Assert.ThrowsAsync<RpcException>(() => worker.InfoAsync());
            Assert.Equal(StatusCode.Unauthenticated, info.StatusCode);

            foreach (var secret in new[] { current, previous })
            {
                var (tokens, final, _) = await worker.GenerateAsync(request, headers: Header(secret));
                Assert.InRange(tokens.Count, 1, (int)request.Stopping.MaxNewTokens);
                Assert.Equal((uint)tokens.Count, final.Usage.GeneratedTokens);
            }
            Assert.True((await worker.Client.GetInfoAsync(new DecoderInfoRequest(), Header(current))).Ready);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_secret_file_that_is_missing_stops_the_worker_naming_it()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"kosmos2-no-such-secret-{Guid.NewGuid():N}");
        await using var worker = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Decoder__DType"] = "float32",
            ["Decoder__Device"] = "cpu",
            [EnvironmentName(InternalSecrets.SecretFileSetting)] = missing,
        });

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains(InternalSecrets.SecretFileSetting, worker.RecentOutput, StringComparison.Ordinal);
        Assert.Contains(missing, worker.RecentOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_with_no_secret_refuses_to_listen_beyond_loopback_naming_the_settings()
    {
        await using var worker = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Decoder__DType"] = "float32",
            ["Decoder__Device"] = "cpu",
            [EnvironmentName($"{ServiceOptions.SectionName}:{nameof(ServiceOptions.Host)}")] = "0.0.0.0",
        });

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains(InternalSecrets.SecretSetting, worker.RecentOutput, StringComparison.Ordinal);
        Assert.Contains(InternalSecrets.SecretFileSetting, worker.RecentOutput, StringComparison.Ordinal);
    }
}
