using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;
using Kosmos2.Testing;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>
/// Only the gateway may call the vision worker: with a secret configured, Encode and GetInfo need it in the internal
/// header (health does not: the kubelet probes without it), and a worker with no secret refuses to listen beyond loopback.
/// </summary>
public sealed class InternalCallAuthTests
{
    private static string EnvironmentName(string setting) => setting.Replace(":", "__", StringComparison.Ordinal);

    private static Metadata Header(string secret) => new() { { InternalCallAuth.Header, secret } };

    [Fact]
    public async Task Encode_and_GetInfo_need_the_internal_secret_and_health_does_not()
    {
        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        await using var worker = await VisionWorkerHost.StartAsync(null, new Dictionary<string, string>
        {
            [EnvironmentName(InternalSecrets.SecretSetting)] = secret,
        });
        var request = new EncodeRequest { Image = ByteString.CopyFrom(TestImages.RandomPng(48, 40, seed: 31)) };

        var health = await new Health.HealthClient(worker.Process.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var missing = await Assert.ThrowsAsync<RpcException>(() => worker.Client.EncodeAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        Assert.Contains(InternalCallAuth.Header, missing.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(InternalSecrets.SecretSetting, missing.Status.Detail, StringComparison.Ordinal);

        foreach (var wrong in new[] { secret + "0", secret[..^1], "", secret.ToLowerInvariant() })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => worker.Client.EncodeAsync(request, Header(wrong)).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        }
        var info = await Assert.ThrowsAsync<RpcException>(() => worker.InfoAsync());
        Assert.Equal(StatusCode.Unauthenticated, info.StatusCode);

        var reply = await worker.Client.EncodeAsync(request, Header(secret));
        Assert.NotEmpty(reply.Embeddings.Data);
        Assert.True((await worker.Client.GetInfoAsync(new VisionInfoRequest(), Header(secret))).ImagesEncoded > 0);
    }

    [Fact]
    public async Task A_call_without_the_secret_is_refused_on_its_headers_before_its_body_is_read()
    {
        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        const int MaxImageBytes = 1024;
        await using var worker = await VisionWorkerHost.StartAsync(null, new Dictionary<string, string>
        {
            [EnvironmentName(InternalSecrets.SecretSetting)] = secret,
            ["Vision__MaxImageBytes"] = MaxImageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        // Larger than any message the worker accepts (its limit is the image limit plus 1 MiB of headroom): read first,
        // it would be refused as too large; refused on its headers, it never is.
        var oversized = new EncodeRequest { Image = ByteString.CopyFrom(new byte[MaxImageBytes + (4 << 20)]) };

        var stranger = await Assert.ThrowsAsync<RpcException>(() => worker.Client.EncodeAsync(oversized).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, stranger.StatusCode);
        var gateway = await Assert.ThrowsAsync<RpcException>(() => worker.Client.EncodeAsync(oversized, Header(secret)).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, gateway.StatusCode);
    }

    [Fact]
    public async Task A_worker_with_no_secret_refuses_to_listen_beyond_loopback_naming_the_settings()
    {
        await using var worker = ServiceProcess.Start("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), new Dictionary<string, string>
        {
            ["Vision__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Vision__DType"] = "float32",
            ["Vision__Device"] = "cpu",
            [EnvironmentName($"{ServiceOptions.SectionName}:{nameof(ServiceOptions.Host)}")] = "0.0.0.0",
        });

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains(InternalSecrets.SecretSetting, worker.RecentOutput, StringComparison.Ordinal);
        Assert.Contains(InternalSecrets.SecretFileSetting, worker.RecentOutput, StringComparison.Ordinal);
    }
}
