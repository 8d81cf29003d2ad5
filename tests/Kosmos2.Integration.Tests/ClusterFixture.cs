using Grpc.Core;

namespace Kosmos2.Integration.Tests;

/// <summary>One cluster shared by the tests of a collection (starting one takes a few seconds).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const string KeyA = "key-a-0123456789abcdef";
    public const string KeyB = "key-b-0123456789abcdef";

    /// <summary>The key of a tenant whose quota is 1 token a minute: its first generation is served, the next refused.</summary>
    public const string KeyOfTinyQuota = "key-q-0123456789abcdef";

    public static readonly Metadata TenantA = new() { { "authorization", "Bearer " + KeyA } };
    public static readonly Metadata TenantB = new() { { "x-api-key", KeyB } };

    private LocalCluster? _cluster;

    public LocalCluster Cluster => _cluster ?? throw new InvalidOperationException("Not started.");

    public Contracts.V1.Kosmos2.Kosmos2Client Client => new(Cluster.Gateway.Channel);

    public static Dictionary<string, string> ApiKeys => new()
    {
        ["Auth__ApiKeys__0__Key"] = KeyA,
        ["Auth__ApiKeys__0__Tenant"] = "tenant-a",
        ["Auth__ApiKeys__1__Key"] = KeyB,
        ["Auth__ApiKeys__1__Tenant"] = "tenant-b",
        ["Auth__ApiKeys__2__Key"] = KeyOfTinyQuota,
        ["Auth__ApiKeys__2__Tenant"] = "tenant-q",
        ["Auth__ApiKeys__2__Quota__TokensPerMinute"] = "1",
    };

    public async Task InitializeAsync() => _cluster = await LocalCluster.StartAsync(ApiKeys);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(nameof(ClusterCollection))]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>;
