using Kosmos2.Gateway.Sessions;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Tests;

/// <summary>The in-process store keeps the same contract as the Redis one.</summary>
public sealed class InMemorySessionStoreTests : SessionStoreContract
{
    private readonly InMemorySessionStore _store = new(Options.Create(Limits), TimeProvider.System);

    protected override ISessionStore Store => _store;

    [Fact]
    public async Task An_expired_session_is_gone()
    {
        var store = new InMemorySessionStore(Options.Create(new GatewayOptions { SessionTtlSeconds = 0 }), TimeProvider.System);

        var created = await store.CreateAsync(NewSession("acme"));

        Assert.Null(await store.GetAsync("acme", created.Id));
    }
}
