using Microsoft.Extensions.DependencyInjection.Extensions;
using StackExchange.Redis;

namespace Kosmos2.Gateway.Sessions;

/// <summary>Registers the session store.</summary>
public static class SessionsExtensions
{
    /// <summary>Configuration key of the StackExchange.Redis connection string.</summary>
    public const string RedisConfigurationKey = "Redis:Configuration";

    /// <summary>
    /// <see cref="RedisSessionStore"/> when <c>Redis:Configuration</c> is set, else <see cref="InMemorySessionStore"/>
    /// (with a startup warning). The Redis connection does not abort when Redis is down at startup: it keeps trying,
    /// and session calls fail until it is back.
    /// </summary>
    public static WebApplicationBuilder AddGatewaySessions(this WebApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(TimeProvider.System);
        var redisConfiguration = builder.Configuration[RedisConfigurationKey];
        if (string.IsNullOrWhiteSpace(redisConfiguration))
        {
            builder.Services.AddSingleton<ISessionStore, InMemorySessionStore>();
        }
        else
        {
            builder.Services.TryAddSingleton<IConnectionMultiplexer>(_ =>
            {
                var options = ConfigurationOptions.Parse(redisConfiguration);
                options.AbortOnConnectFail = false;
                return ConnectionMultiplexer.Connect(options);
            });
            builder.Services.AddSingleton<ISessionStore, RedisSessionStore>();
        }
        builder.Services.AddHostedService<SessionStoreStartupReport>();
        return builder;
    }
}
