using Microsoft.Extensions.Configuration;
using StackExchange.Redis;

namespace Kosmos2.ServiceDefaults;

/// <summary>The one Redis connection of a service, from <c>Redis:Configuration</c> (a StackExchange.Redis configuration string).</summary>
public static class RedisConnection
{
    /// <summary>
    /// Connects without waiting for Redis to be up (<c>abortConnect=false</c>: the multiplexer keeps reconnecting in the
    /// background), or returns null when Redis is not configured.
    /// </summary>
    public static IConnectionMultiplexer? ConnectOrNull(IConfiguration configuration)
    {
        var setting = configuration["Redis:Configuration"];
        if (string.IsNullOrWhiteSpace(setting))
        {
            return null;
        }
        var options = ConfigurationOptions.Parse(setting);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 2000);
        // Short timeouts: a slow Redis must cost a request at most this long before it computes instead.
        options.SyncTimeout = Math.Min(options.SyncTimeout, 1000);
        options.AsyncTimeout = Math.Min(options.AsyncTimeout, 1000);
        options.ReconnectRetryPolicy = new LinearRetry(500);
        return ConnectionMultiplexer.Connect(options);
    }
}
