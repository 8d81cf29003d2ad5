using Microsoft.Extensions.Configuration;
using StackExchange.Redis;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// The two Redis connections, each a StackExchange.Redis configuration string: <c>Redis:Sessions</c> (the gateway's
/// chat sessions: data, kept by a server that never evicts) and <c>Redis:Cache</c> (the vision worker's embedding
/// cache: evictable). They may name the same server (<c>kosmos2 up</c>, tests) or two (the Kubernetes deployment).
/// <c>Redis:Password</c>, when set, is the password of whichever connection string names none (so a Secret can
/// hold it while the address stays in a ConfigMap).
/// </summary>
public static class RedisConnection
{
    public const string Sessions = "Redis:Sessions";

    public const string Cache = "Redis:Cache";

    public const string Password = "Redis:Password";

    /// <summary>The one setting both used to share; refused so that an old configuration cannot silently lose its Redis.</summary>
    private const string Retired = "Redis:Configuration";

    /// <summary>The parsed options of <paramref name="setting"/> (<see cref="Sessions"/> or <see cref="Cache"/>), with
    /// <see cref="Password"/> applied; null when the setting is empty. Never aborts on a failed first connect.</summary>
    public static ConfigurationOptions? Options(IConfiguration configuration, string setting)
    {
        if (!string.IsNullOrWhiteSpace(configuration[Retired]))
        {
            throw new InvalidOperationException(
                $"{Retired} (environment Redis__Configuration) is no longer read: set {Sessions} (chat sessions, a Redis that never " +
                $"evicts) and {Cache} (embedding cache), e.g. both to the same value (environment Redis__Sessions, Redis__Cache).");
        }
        var value = configuration[setting];
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var options = ConfigurationOptions.Parse(value);
        if (string.IsNullOrEmpty(options.Password) && configuration[Password] is { Length: > 0 } password)
        {
            options.Password = password;
        }
        options.AbortOnConnectFail = false;
        return options;
    }

    /// <summary>
    /// The cache connection of <paramref name="setting"/>, or null when it is not configured. Connects without waiting
    /// for Redis to be up (the multiplexer keeps reconnecting in the background), with short timeouts: a slow cache
    /// must cost a request at most this long before it computes instead.
    /// </summary>
    public static IConnectionMultiplexer? ConnectOrNull(IConfiguration configuration, string setting)
    {
        if (Options(configuration, setting) is not { } options)
        {
            return null;
        }
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 2000);
        options.SyncTimeout = Math.Min(options.SyncTimeout, 1000);
        options.AsyncTimeout = Math.Min(options.AsyncTimeout, 1000);
        options.ReconnectRetryPolicy = new LinearRetry(500);
        return ConnectionMultiplexer.Connect(options);
    }
}
