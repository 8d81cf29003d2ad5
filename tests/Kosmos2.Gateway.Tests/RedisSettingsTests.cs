using Kosmos2.Gateway.Sessions;

namespace Kosmos2.Gateway.Tests;

/// <summary>Redis:Sessions with the password from Redis:Password (a Secret in the deployment), and the retired
/// Redis:Configuration refused rather than silently dropping to in-process sessions.</summary>
public sealed class RedisSettingsTests
{
    private const string Password = "session-store-password";

    [Fact]
    public async Task The_session_store_authenticates_with_redis_password_when_the_connection_string_names_none()
    {
        await using var server = await RedisServer.StartAsync(persistent: false, password: Password);
        var address = $"127.0.0.1:{server.Port},abortConnect=false";

        await using (var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["Redis:Sessions"] = address, ["Redis:Password"] = Password }))
        {
            var store = Assert.IsType<RedisSessionStore>(gateway.Services.GetService(typeof(ISessionStore)));
            var session = await store.CreateAsync(SessionStoreContract.NewSessionFor("acme"));
            Assert.NotNull(await store.GetAsync("acme", session.Id));
        }
        Assert.Equal(1, await server.DbSizeAsync());

        // The same string without the password is refused by the server: the setting is what authenticated.
        await using (var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["Redis:Sessions"] = address }))
        {
            var store = (ISessionStore)gateway.Services.GetService(typeof(ISessionStore))!;
            await Assert.ThrowsAnyAsync<Exception>(() => store.CreateAsync(SessionStoreContract.NewSessionFor("acme")));
        }
    }

    [Fact]
    public async Task The_retired_redis_configuration_setting_stops_the_gateway_with_the_settings_to_use()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            GatewayHost.StartAsync(new Dictionary<string, string?> { ["Redis:Configuration"] = "127.0.0.1:6379" }));

        Assert.Contains("Redis:Sessions", error.Message, StringComparison.Ordinal);
        Assert.Contains("Redis:Cache", error.Message, StringComparison.Ordinal);
    }
}
