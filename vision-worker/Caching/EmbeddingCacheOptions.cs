namespace Kosmos2.VisionWorker.Caching;

/// <summary>Embedding cache settings, bound from <c>Vision:Cache</c>.</summary>
public sealed class EmbeddingCacheOptions
{
    /// <summary>Prefix of every Redis key (lets several deployments share one Redis).</summary>
    public string KeyPrefix { get; set; } = "kosmos2:emb:";

    /// <summary>Dtype the embeddings are stored in: <c>bfloat16</c> (256 KiB per image at full size) or <c>float32</c> (512 KiB).</summary>
    public string StoreDType { get; set; } = "";

    /// <summary>Time to live of a Redis entry; refreshed on every hit.</summary>
    public int TtlSeconds { get; set; } = 24 * 3600;

    /// <summary>Bound of the in-process LRU in front of Redis, in bytes (0 disables it).</summary>
    public long LocalMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Longest a request waits on Redis before computing instead (a slow Redis must not slow requests more than this).</summary>
    public int RedisTimeoutMs { get; set; } = 100;
}
