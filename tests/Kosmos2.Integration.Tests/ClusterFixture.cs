using Grpc.Core;

namespace Kosmos2.Integration.Tests;

/// <summary>One cluster shared by the tests of a collection (starting one takes a few seconds).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public static readonly Metadata TenantA = new() { { "authorization", "Bearer key-a" } };
    public static readonly Metadata TenantB = new() { { "x-api-key", "key-b" } };

    private LocalCluster? _cluster;

    public LocalCluster Cluster => _cluster ?? throw new InvalidOperationException("Not started.");

    public Contracts.V1.Kosmos2.Kosmos2Client Client => new(Cluster.Gateway.Channel);

    public static Dictionary<string, string> ApiKeys => new()
    {
        ["Auth__ApiKeys__0__Key"] = "key-a",
        ["Auth__ApiKeys__0__Tenant"] = "tenant-a",
        ["Auth__ApiKeys__1__Key"] = "key-b",
        ["Auth__ApiKeys__1__Tenant"] = "tenant-b",
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
