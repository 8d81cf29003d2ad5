using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StackExchange.Redis;

namespace Kosmos2.Gateway.Sessions;

/// <summary>Registers the session store.</summary>
public static class SessionsExtensions
{
    /// <summary>
    /// <see cref="RedisSessionStore"/> when <c>Redis:Sessions</c> is set (<see cref="RedisConnection"/>), else
    /// <see cref="InMemorySessionStore"/> (with a startup warning). The Redis connection does not abort when Redis is
    /// down at startup: it keeps trying, and session calls fail until it is back.
    /// </summary>
    public static WebApplicationBuilder AddGatewaySessions(this WebApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(TimeProvider.System);
        var redisOptions = RedisConnection.Options(builder.Configuration, RedisConnection.Sessions);
        if (redisOptions is null)
        {
            builder.Services.AddSingleton<ISessionStore, InMemorySessionStore>();
        }
        else
        {
            builder.Services.TryAddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(redisOptions));
            builder.Services.AddSingleton<ISessionStore, RedisSessionStore>();
        }
        builder.Services.AddHostedService<SessionStoreStartupReport>();
        return builder;
    }
}
