using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;
using Xunit.Abstractions;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// What one tenant can learn or use of another's, on the whole cluster (real workers, real Redis): images belong to the
/// tenant that sent them, quotas are per tenant, and an unauthenticated flood costs the gateway no request bodies.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class TenantIsolationTests(ClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly Metadata TenantQ = new() { { "authorization", "Bearer " + ClusterFixture.KeyOfTinyQuota } };

    [Fact]
    public async Task Another_tenants_image_is_not_found_by_its_hash_and_gives_no_cache_hit_signal()
    {
        var png = TestImages.RandomPng(80, 60, seed: 4242);
        var byBytes = new GenerateRequest { Image = new Image { Data = ByteString.CopyFrom(png) }, Task = TaskKind.BriefCaption, Stopping = new StoppingParameters { MaxNewTokens = 3 } };

        var fromA = await ResultAsync(byBytes, ClusterFixture.TenantA);
        var byHash = new GenerateRequest(byBytes) { Image = new Image { Sha256 = fromA.ImageSha256 } };
        var hashFromB = await Assert.ThrowsAsync<RpcException>(() => ResultAsync(byHash, ClusterFixture.TenantB));
        var sessionFromB = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Client.CreateSessionAsync(new CreateSessionRequest { Image = byHash.Image }, ClusterFixture.TenantB).ResponseAsync);
        var bytesFromB = await ResultAsync(byBytes, ClusterFixture.TenantB);
        var againFromB = await ResultAsync(byBytes, ClusterFixture.TenantB);
        var hashFromA = await ResultAsync(byHash, ClusterFixture.TenantA);

        Assert.False(fromA.Timings.ImageCacheHit);
        Assert.Equal(StatusCode.NotFound, hashFromB.StatusCode);
        Assert.Equal(StatusCode.NotFound, sessionFromB.StatusCode);
        Assert.False(bytesFromB.Timings.ImageCacheHit); // A sent it before, and B cannot tell
        Assert.True(againFromB.Timings.ImageCacheHit); // B's own upload is B's to reuse
        Assert.True(hashFromA.Timings.ImageCacheHit);
        Assert.Equal(fromA.Text, bytesFromB.Text); // the same image gives the same answer to both
    }

    [Fact]
    public async Task The_decoders_prefix_cache_is_never_shared_across_tenants()
    {
        var request = new GenerateRequest
        {
            Image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(64, 64, seed: 4444)) },
            Task = TaskKind.DetailedCaption,
            Stopping = new StoppingParameters { MaxNewTokens = 3 },
        };

        var fromA = await ResultAsync(request, ClusterFixture.TenantA);
        var againFromA = await ResultAsync(request, ClusterFixture.TenantA);
        var fromB = await ResultAsync(request, ClusterFixture.TenantB);
        var againFromB = await ResultAsync(request, ClusterFixture.TenantB);

        Assert.True(againFromA.Usage.CachedPromptTokens > 0, "A's repeat should reuse A's prefix");
        Assert.Equal(0u, fromB.Usage.CachedPromptTokens); // A's prefix is A's
        Assert.True(againFromB.Usage.CachedPromptTokens > 0, "B's repeat should reuse B's own prefix");
        Assert.Equal(fromA.TokenIds, fromB.TokenIds);
    }

    [Fact]
    public async Task A_tenant_over_its_tokens_per_minute_is_refused_with_a_retry_hint_while_another_is_served()
    {
        var request = new GenerateRequest
        {
            Image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(40, 40, seed: 4343)) },
            Task = TaskKind.BriefCaption,
            Stopping = new StoppingParameters { MaxNewTokens = 2 },
        };

        var first = await ResultAsync(request, TenantQ); // within the quota when it starts; its tokens use it up
        var refused = await Assert.ThrowsAsync<RpcException>(() => ResultAsync(request, TenantQ));
        var other = await ResultAsync(request, ClusterFixture.TenantB);

        Assert.True(first.Usage.PromptTokens + first.Usage.GeneratedTokens > 1);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("tokens", refused.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(int.Parse(refused.Trailers.GetValue("retry-after")!, CultureInfo.InvariantCulture), 1, 60);
        Assert.Equal(first.Text, other.Text);
    }

    [Fact]
    public async Task Fifty_unauthenticated_20MB_requests_at_once_leave_the_gateway_under_200MB()
    {
        var gateway = fixture.Cluster.Gateway;
        var image = new Image { Data = ByteString.CopyFrom(new byte[20 * 1024 * 1024]) };
        var before = ProcessMemory.ResetPeak(gateway.ProcessId);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            try
            {
                using var call = fixture.Client.Generate(new GenerateRequest { Image = image, Task = TaskKind.BriefCaption },
                    new Metadata { { "x-api-key", "not-a-key-of-this-gateway" } }, deadline: DateTime.UtcNow.AddSeconds(60));
                await call.ResponseStream.MoveNext(CancellationToken.None);
                return StatusCode.OK;
            }
            catch (RpcException ex)
            {
                return ex.StatusCode;
            }
        }));
        var peak = ProcessMemory.PeakBytes(gateway.ProcessId);
        output.WriteLine($"gateway RSS before: {before / (1024 * 1024)} MB; peak during 50 unauthenticated 20 MB requests: {peak / (1024 * 1024)} MB");

        Assert.All(statuses, s => Assert.Equal(StatusCode.Unauthenticated, s));
        Assert.True(peak < 200L * 1024 * 1024, $"the gateway's peak RSS was {peak / (1024 * 1024)} MB (before: {before / (1024 * 1024)} MB); 50 bodies of 20 MB would be 1 GB");
    }

    private async Task<GenerateResult> ResultAsync(GenerateRequest request, Metadata headers)
    {
        using var call = fixture.Client.Generate(request, headers);
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result = message.Result ?? result;
        }
        return result ?? throw new InvalidOperationException("No final result.");
    }
}
