using System.Security.Cryptography;

namespace Kosmos2.Launch;

/// <summary>
/// The configuration of a cluster on one machine, as environment variables: what every service gets, and what the
/// gateway adds. <c>kosmos2 up</c>, the tests' <see cref="LocalCluster"/> and the benchmarks build it here.
/// </summary>
public static class ClusterEnvironment
{
    /// <summary>The secret the gateway sends on every worker call and the workers require (<c>Internal:Secret</c>).</summary>
    public const string InternalSecret = "Internal__Secret";

    /// <summary>The password of the Redis servers, for whichever connection string names none (<c>Redis:Password</c>).</summary>
    public const string RedisPassword = "Redis__Password";

    /// <summary>A fresh random secret (256 bits, hex): one per run of a cluster, for <see cref="InternalSecret"/> or Redis.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Both workers load <paramref name="modelDir"/> in <paramref name="dtype"/>; sessions and the embedding cache
    /// use these Redis servers (none: the services' in-process stores).</summary>
    public static Dictionary<string, string> Common(string modelDir, string dtype, string? sessionsRedis, string? cacheRedis)
    {
        var environment = new Dictionary<string, string>
        {
            ["Vision__ModelDir"] = Path.GetFullPath(modelDir),
            ["Vision__DType"] = dtype,
            ["Decoder__ModelDir"] = Path.GetFullPath(modelDir),
            ["Decoder__DType"] = dtype,
            // Loopback only: reflection lets grpcurl and `buf curl` list the services (off by default elsewhere).
            ["Service__EnableReflection"] = "true",
            // One secret per cluster for the tenants' cache namespaces, so its gateways (and a restarted one) agree.
            ["Auth__EmbeddingCacheSecret"] = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        };
        if (sessionsRedis is not null)
        {
            environment["Redis__Sessions"] = sessionsRedis;
        }
        if (cacheRedis is not null)
        {
            environment["Redis__Cache"] = cacheRedis;
        }
        return environment;
    }

    /// <summary>The gateway's settings: <paramref name="common"/>, the tokenizer of <paramref name="modelDir"/> and its workers.</summary>
    public static Dictionary<string, string> Gateway(IReadOnlyDictionary<string, string> common, string modelDir, string visionAddress, IEnumerable<string> decoderAddresses) =>
        new(common)
        {
            ["Gateway__TokenizerDir"] = Path.GetFullPath(modelDir),
            ["Gateway__VisionWorkers"] = visionAddress,
            ["Gateway__DecoderWorkers"] = string.Join(',', decoderAddresses),
        };
}
