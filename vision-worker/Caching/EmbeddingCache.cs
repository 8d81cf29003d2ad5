using System.Diagnostics.Metrics;
using Kosmos2.Contracts.Internal.V1;
using StackExchange.Redis;

namespace Kosmos2.VisionWorker.Caching;

/// <summary>Where a cached value was found.</summary>
public enum CacheTier
{
    None,
    Local,
    Redis,
}

/// <summary>
/// Two-tier embedding cache: a bounded in-process LRU, then Redis (shared by every replica). Redis is
/// optional and never fatal: when it is down, slow or returns a damaged value, the caller computes; every
/// wait on it is bounded by <see cref="EmbeddingCacheOptions.RedisTimeoutMs"/>. StackExchange.Redis
/// reconnects by itself, so hits resume when Redis returns.
/// </summary>
public sealed partial class EmbeddingCache : IDisposable
{
    private readonly EmbeddingCacheOptions _options;
    private readonly IConnectionMultiplexer? _redis;
    private readonly LocalLru? _local;
    private readonly ILogger _logger;
    private readonly Counter<long> _hits;
    private readonly Counter<long> _misses;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _damaged;
    private readonly Counter<long> _bytesRead;
    private readonly Counter<long> _bytesWritten;
    private int _redisHealthy = 1;

    public EmbeddingCache(EmbeddingCacheOptions options, IConnectionMultiplexer? redis, Meter meter, ILogger<EmbeddingCache> logger)
    {
        _options = options;
        _redis = redis;
        _logger = logger;
        _local = options.LocalMaxBytes > 0 ? new LocalLru(options.LocalMaxBytes) : null;
        _hits = meter.CreateCounter<long>("kosmos2.vision.cache.hits", description: "Embedding cache hits, by tier.");
        _misses = meter.CreateCounter<long>("kosmos2.vision.cache.misses", description: "Embedding cache misses (a forward ran or will run).");
        _errors = meter.CreateCounter<long>("kosmos2.vision.cache.redis_errors", description: "Redis calls that failed or timed out.");
        _damaged = meter.CreateCounter<long>("kosmos2.vision.cache.damaged", description: "Cached values that failed their header check and were recomputed.");
        _bytesRead = meter.CreateCounter<long>("kosmos2.vision.cache.bytes_read", "By", "Bytes of embeddings served from the cache.");
        _bytesWritten = meter.CreateCounter<long>("kosmos2.vision.cache.bytes_written", "By", "Bytes of embeddings written to Redis.");
    }

    /// <summary>True while Redis is configured and its last call succeeded.</summary>
    public bool RedisHealthy => _redis is not null && Volatile.Read(ref _redisHealthy) == 1;

    /// <summary>Looks the key up locally, then in Redis; a damaged value counts as a miss (and is deleted).</summary>
    public async Task<(CachedEmbeddings? Value, CacheTier Tier)> GetAsync(string key, TensorDType dtype, int rows, int columns)
    {
        if (_local is not null && _local.TryGet(key, out var localBytes))
        {
            var local = EmbeddingPayload.TryDecode(localBytes, dtype, rows, columns);
            if (local is not null)
            {
                Record(_hits, CacheTier.Local, localBytes.Length);
                return (local, CacheTier.Local);
            }
            _local.Remove(key);
            _damaged.Add(1);
        }

        if (_redis is not null)
        {
            var bytes = await TryRedisAsync(db => db.StringGetSetExpiryAsync(key, TimeSpan.FromSeconds(_options.TtlSeconds))).ConfigureAwait(false);
            if (!bytes.IsNull)
            {
                byte[] raw = bytes!;
                var value = EmbeddingPayload.TryDecode(raw, dtype, rows, columns);
                if (value is not null)
                {
                    _local?.Set(key, raw);
                    Record(_hits, CacheTier.Redis, raw.Length);
                    return (value, CacheTier.Redis);
                }
                _damaged.Add(1);
                LogDamaged(_logger, key, raw.Length);
                await TryRedisAsync(db => db.KeyDeleteAsync(key)).ConfigureAwait(false);
            }
        }
        _misses.Add(1);
        return (null, CacheTier.None);
    }

    /// <summary>Stores a value locally and in Redis (with the TTL); a Redis failure is logged and ignored.</summary>
    public async Task SetAsync(string key, CachedEmbeddings embeddings)
    {
        var value = EmbeddingPayload.Encode(embeddings.DType, embeddings.Rows, embeddings.Columns, embeddings.ImageWidth, embeddings.ImageHeight, embeddings.Data);
        _local?.Set(key, value);
        if (_redis is not null)
        {
            var stored = await TryRedisAsync(db => db.StringSetAsync(key, value, TimeSpan.FromSeconds(_options.TtlSeconds))).ConfigureAwait(false);
            if (stored)
            {
                _bytesWritten.Add(value.Length);
            }
        }
    }

    public void Dispose() => _redis?.Dispose();

    /// <summary>Runs one Redis call with the bounded wait; default(T) when Redis is down, slow or failing.</summary>
    private async Task<T?> TryRedisAsync<T>(Func<IDatabase, Task<T>> call)
    {
        if (_redis is null)
        {
            return default;
        }
        if (!_redis.IsConnected)
        {
            MarkRedis(healthy: false, "not connected");
            return default;
        }
        try
        {
            var result = await call(_redis.GetDatabase()).WaitAsync(TimeSpan.FromMilliseconds(_options.RedisTimeoutMs)).ConfigureAwait(false);
            MarkRedis(healthy: true, null);
            return result;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _errors.Add(1);
            MarkRedis(healthy: false, ex.Message);
            return default;
        }
    }

    private void MarkRedis(bool healthy, string? reason)
    {
        var now = healthy ? 1 : 0;
        if (Interlocked.Exchange(ref _redisHealthy, now) != now)
        {
            if (healthy)
            {
                LogRedisBack(_logger);
            }
            else
            {
                LogRedisDown(_logger, reason ?? "unknown");
            }
        }
    }

    private void Record(Counter<long> counter, CacheTier tier, int bytes)
    {
        counter.Add(1, new KeyValuePair<string, object?>("tier", tier == CacheTier.Local ? "local" : "redis"));
        _bytesRead.Add(bytes);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis unavailable ({Reason}): encoding images without the shared cache until it returns")]
    private static partial void LogRedisDown(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis is back: shared embedding cache in use again")]
    private static partial void LogRedisBack(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Damaged cache value for {Key} ({Bytes} bytes): recomputing")]
    private static partial void LogDamaged(ILogger logger, string key, int bytes);
}
