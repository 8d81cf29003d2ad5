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
    public async Task Keys_map_to_their_tenants_and_the_salt_is_per_tenant_only_when_asked()
    {
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>(TwoKeys) { ["Auth:SaltEmbeddingCacheByTenant"] = "true" });
        var store = gateway.Services.GetRequiredService<ApiKeyStore>();

        var acme = store.Authenticate("key-of-acme-0123456789");
        var globex = store.Authenticate("key-of-globex-987654321");

        Assert.Equal("acme", acme?.Id);
        Assert.Equal("globex", globex?.Id);
        Assert.NotEqual("", acme!.EmbeddingCacheSalt);
        Assert.NotEqual(acme.EmbeddingCacheSalt, globex!.EmbeddingCacheSalt);
        Assert.Equal(Tenant.CacheSaltFor("acme"), acme.EmbeddingCacheSalt);
        Assert.Equal("", Tenant.Create("acme", saltCache: false).EmbeddingCacheSalt);
        Assert.Null(store.Authenticate(""));
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

    private static Metadata Bearer(string key) => new() { { "authorization", "Bearer " + key } };

    private static void WriteKeys(string path, (string Key, string Tenant) entry, DateTime lastWriteUtc)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(new[] { new { key = entry.Key, tenant = entry.Tenant } }));
        File.SetLastWriteTimeUtc(path, lastWriteUtc);
    }
}
