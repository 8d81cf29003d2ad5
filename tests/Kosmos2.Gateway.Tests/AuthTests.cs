using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using Grpc.Health.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Auth;
using Microsoft.Extensions.DependencyInjection;

namespace Kosmos2.Gateway.Tests;

/// <summary>API keys on the real gateway host: the public service is closed without a key, health is open.</summary>
public sealed class AuthTests
{
    private static readonly Dictionary<string, string?> TwoKeys = new()
    {
        ["Auth:ApiKeys:0:Key"] = "key-of-acme-0123456789",
        ["Auth:ApiKeys:0:Tenant"] = "acme",
        ["Auth:ApiKeys:1:Key"] = "key-of-globex-987654321",
        ["Auth:ApiKeys:1:Tenant"] = "globex",
    };

    [Fact]
    public async Task A_call_without_a_key_is_unauthenticated_and_told_how_to_send_one()
    {
        await using var gateway = await GatewayHost.StartAsync(TwoKeys);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest()).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Contains("authorization: Bearer", ex.Status.Detail);
        Assert.Contains("x-api-key", ex.Status.Detail);
    }

    [Theory]
    [InlineData("authorization", "Bearer not-a-key")]
    [InlineData("x-api-key", "key-of-acme-0123456788")]
    [InlineData("authorization", "Bearer key-of-acme-012345678")]
    public async Task A_wrong_key_is_unauthenticated(string header, string value)
    {
        await using var gateway = await GatewayHost.StartAsync(TwoKeys);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), new Metadata { { header, value } }).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Contains("Invalid API key", ex.Status.Detail);
    }

    [Theory]
    [InlineData("authorization", "Bearer key-of-acme-0123456789")]
    [InlineData("authorization", "bearer key-of-globex-987654321")]
    [InlineData("x-api-key", "key-of-globex-987654321")]
    public async Task A_right_key_in_either_header_is_let_in(string header, string value)
    {
        await using var gateway = await GatewayHost.StartAsync(TwoKeys);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var info = await client.GetInfoAsync(new GetInfoRequest(), new Metadata { { header, value } });

        Assert.Equal("microsoft/kosmos-2-patch14-224", info.ModelId);
    }

    [Fact]
    public async Task Health_stays_open_when_keys_are_required()
    {
        await using var gateway = await GatewayHost.StartAsync(TwoKeys);

        var reply = await new Health.HealthClient(gateway.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Fact]
    public async Task With_no_key_configured_the_gateway_runs_open_as_tenant_local()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var info = await client.GetInfoAsync(new GetInfoRequest());

        Assert.NotNull(info);
        var store = gateway.Services.GetRequiredService<ApiKeyStore>();
        Assert.True(store.IsOpen);
        Assert.Equal("local", store.OpenTenant.Id);
    }

    [Fact]
    public async Task Keys_map_to_their_tenants_each_with_its_own_cache_namespace_keyed_by_the_server_secret()
    {
        var withSecret = new Dictionary<string, string?>(TwoKeys) { ["Auth:EmbeddingCacheSecret"] = "cluster-secret-0123456789" };
        await using var gateway = await GatewayHost.StartAsync(withSecret);
        await using var replica = await GatewayHost.StartAsync(withSecret);
        await using var otherSecret = await GatewayHost.StartAsync(new Dictionary<string, string?>(TwoKeys) { ["Auth:EmbeddingCacheSecret"] = "another-secret-0123456789" });
        await using var shared = await GatewayHost.StartAsync(new Dictionary<string, string?>(TwoKeys) { ["Auth:SaltEmbeddingCacheByTenant"] = "false" });
        var store = gateway.Services.GetRequiredService<ApiKeyStore>();

        var acme = store.Authenticate("key-of-acme-0123456789");
        var globex = store.Authenticate("key-of-globex-987654321");

        Assert.Equal("acme", acme?.Id);
        Assert.Equal("globex", globex?.Id);
        Assert.NotEqual("", acme!.EmbeddingCacheSalt);
        Assert.NotEqual(acme.EmbeddingCacheSalt, globex!.EmbeddingCacheSalt);
        // Replicas with one secret agree (a hash sent to one is found through another); another secret gives other
        // namespaces, so a salt cannot be computed from the tenant's name alone.
        Assert.Equal(acme.EmbeddingCacheSalt, replica.Services.GetRequiredService<ApiKeyStore>().Authenticate("key-of-acme-0123456789")!.EmbeddingCacheSalt);
        Assert.NotEqual(acme.EmbeddingCacheSalt, otherSecret.Services.GetRequiredService<ApiKeyStore>().Authenticate("key-of-acme-0123456789")!.EmbeddingCacheSalt);
        Assert.Equal("", shared.Services.GetRequiredService<ApiKeyStore>().Authenticate("key-of-acme-0123456789")!.EmbeddingCacheSalt);
        Assert.Null(store.Authenticate(""));
    }

    [Fact]
    public async Task A_configured_key_shorter_than_the_minimum_stops_the_gateway_from_starting()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Auth:ApiKeys:0:Key"] = new string('k', AuthOptions.MinKeyLength - 1),
            ["Auth:ApiKeys:0:Tenant"] = "acme",
        }));

        Assert.Contains($"at least {AuthOptions.MinKeyLength}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_short_key_in_the_key_file_is_refused_and_the_others_still_work()
    {
        var dir = Directory.CreateTempSubdirectory("kosmos2-keys-");
        try
        {
            var shortKey = new string('s', AuthOptions.MinKeyLength - 1);
            var file = Path.Combine(dir.FullName, "keys.json");
            File.WriteAllText(file, JsonSerializer.Serialize(new[] { new { key = shortKey, tenant = "acme" }, new { key = "long-enough-key-0123", tenant = "globex" } }));
            await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["Auth:ApiKeysFile"] = file });
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

            var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), Bearer(shortKey)).ResponseAsync);

            Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
            await client.GetInfoAsync(new GetInfoRequest(), Bearer("long-enough-key-0123"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task The_key_file_is_read_again_when_it_changes()
    {
        var dir = Directory.CreateTempSubdirectory("kosmos2-keys-");
        var file = Path.Combine(dir.FullName, "keys.json");
        try
        {
            WriteKeys(file, ("first-key-abcdef", "acme"), DateTime.UtcNow.AddMinutes(-1));
            await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
            {
                ["Auth:ApiKeysFile"] = file,
                ["Auth:ApiKeysFileCheckSeconds"] = "0",
            });
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
            await client.GetInfoAsync(new GetInfoRequest(), Bearer("first-key-abcdef"));

            WriteKeys(file, ("second-key-ghijkl", "acme"), DateTime.UtcNow);

            await Poll.UntilAsync(async () =>
            {
                await client.GetInfoAsync(new GetInfoRequest(), Bearer("second-key-ghijkl"));
                return true;
            }, TimeSpan.FromSeconds(10), "the new key to be accepted");
            var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), Bearer("first-key-abcdef")).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_key_file_that_is_missing_fails_closed()
    {
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Auth:ApiKeysFile"] = Path.Combine(Path.GetTempPath(), "kosmos2-no-such-dir", "keys.json"),
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest()).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
    }

    [Fact]
    public async Task A_key_revoked_by_a_kubelet_style_symlink_swap_is_refused_within_the_check_interval()
    {
        // A mounted Secret: keys.json -> ..data/keys.json, ..data -> ..<timestamp>/. The kubelet writes a new
        // timestamped folder and renames a new ..data link over the old one; keys.json itself never changes.
        var dir = Directory.CreateTempSubdirectory("kosmos2-secret-");
        try
        {
            var first = Directory.CreateDirectory(Path.Combine(dir.FullName, "..2026_12_02_first"));
            WriteKeys(Path.Combine(first.FullName, "keys.json"), ("revoked-soon-key-0001", "acme"), DateTime.UtcNow.AddMinutes(-5));
            File.CreateSymbolicLink(Path.Combine(dir.FullName, "..data"), first.Name);
            var file = Path.Combine(dir.FullName, "keys.json");
            File.CreateSymbolicLink(file, Path.Combine("..data", "keys.json"));
            await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
            {
                ["Auth:ApiKeysFile"] = file,
                ["Auth:ApiKeysFileCheckSeconds"] = "1",
            });
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
            await client.GetInfoAsync(new GetInfoRequest(), Bearer("revoked-soon-key-0001"));
            var linkTime = File.GetLastWriteTimeUtc(file);

            // Same size, same modification time, other key: only the content tells them apart.
            var second = Directory.CreateDirectory(Path.Combine(dir.FullName, "..2026_12_02_secnd"));
            WriteKeys(Path.Combine(second.FullName, "keys.json"), ("replacement-key-0002", "acme"), DateTime.UtcNow.AddMinutes(-5));
            var staged = Path.Combine(dir.FullName, "..data_tmp");
            File.CreateSymbolicLink(staged, second.Name);
            // rename(2) of the new link over the old one, as the kubelet does (File.Move refuses a link to a folder).
            using (var rename = Process.Start("mv", ["-T", "-f", staged, Path.Combine(dir.FullName, "..data")]))
            {
                await rename.WaitForExitAsync();
                Assert.Equal(0, rename.ExitCode);
            }
            Assert.Equal(linkTime, File.GetLastWriteTimeUtc(file));

            var revoked = Stopwatch.StartNew();
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    await client.GetInfoAsync(new GetInfoRequest(), Bearer("revoked-soon-key-0001"));
                    return false;
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
                {
                    return true;
                }
            }, TimeSpan.FromSeconds(10), "the revoked key to be refused");
            Assert.True(revoked.Elapsed < TimeSpan.FromSeconds(5), $"revocation took {revoked.Elapsed.TotalSeconds:F1} s with a 1 s check interval");
            await client.GetInfoAsync(new GetInfoRequest(), Bearer("replacement-key-0002"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_key_past_its_expiry_is_refused_and_one_before_it_is_let_in()
    {
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Auth:ApiKeys:0:Key"] = "expired-key-0123456789",
            ["Auth:ApiKeys:0:Tenant"] = "acme",
            ["Auth:ApiKeys:0:ExpiresAt"] = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("o"),
            ["Auth:ApiKeys:1:Key"] = "current-key-0123456789",
            ["Auth:ApiKeys:1:Tenant"] = "acme",
            ["Auth:ApiKeys:1:ExpiresAt"] = DateTimeOffset.UtcNow.AddDays(1).ToString("o"),
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => client.GetInfoAsync(new GetInfoRequest(), Bearer("expired-key-0123456789")).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        await client.GetInfoAsync(new GetInfoRequest(), Bearer("current-key-0123456789"));
    }

    [Fact]
    public async Task A_gateway_with_no_key_refuses_to_start_beyond_loopback_unless_anonymous_is_allowed()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            GatewayHost.StartAsync(new Dictionary<string, string?> { ["Service:Host"] = "0.0.0.0" }));
        Assert.Contains("Auth:AllowAnonymous", error.Message, StringComparison.Ordinal);

        await using var open = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Service:Host"] = "0.0.0.0",
            ["Auth:AllowAnonymous"] = "true",
        });
        Assert.True(open.Services.GetRequiredService<ApiKeyStore>().IsOpen);
    }

    [Fact]
    public async Task Metrics_answer_only_on_the_metrics_port_whatever_the_host_header_says()
    {
        var httpPort = FreePort.Next();
        var metricsPort = FreePort.Next();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Service:HttpPort"] = httpPort.ToString(),
            ["Service:MetricsPort"] = metricsPort.ToString(),
        });
        using var http = new HttpClient();

        using var scrape = await http.GetAsync($"http://127.0.0.1:{metricsPort}/metrics");
        Assert.Equal(System.Net.HttpStatusCode.OK, scrape.StatusCode);

        using var forged = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{httpPort}/metrics");
        forged.Headers.Host = $"x:{metricsPort}";
        using var refused = await http.SendAsync(forged);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, refused.StatusCode);
    }

    private static Metadata Bearer(string key) => new() { { "authorization", "Bearer " + key } };

    private static void WriteKeys(string path, (string Key, string Tenant) entry, DateTime lastWriteUtc)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(new[] { new { key = entry.Key, tenant = entry.Tenant } }));
        File.SetLastWriteTimeUtc(path, lastWriteUtc);
    }
}
