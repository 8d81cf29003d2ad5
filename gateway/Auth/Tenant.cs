using System.Security.Cryptography;
using System.Text;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Who a call is made for, as its API key says.
/// </summary>
/// <param name="Id">The tenant's name from the key configuration; <c>local</c> when the gateway runs open.</param>
/// <param name="EmbeddingCacheSalt">
/// Goes into the vision worker's cache key (<c>EncodeRequest.cache_salt</c>); empty = the shared cache.
/// Why salt by tenant: the embedding cache is keyed by image content, so a cache hit answers measurably faster than
/// an encode (≈ 0.5 ms vs ≈ 0.5–1.3 s on CPU). Without a salt, a tenant could send a guessed image and learn from the
/// timing (or from <c>Timings.image_cache_hit</c>) that another tenant sent the same image. With the salt, each tenant
/// only ever hits its own entries, at the cost of encoding an image shared by several tenants once per tenant.
/// </param>
public sealed record Tenant(string Id, string EmbeddingCacheSalt)
{
    /// <summary>The tenant of an open gateway (no key configured).</summary>
    public const string LocalId = "local";

    /// <summary>Builds a tenant, deriving its cache salt when <paramref name="saltCache"/> is set.</summary>
    public static Tenant Create(string id, bool saltCache) => new(id, saltCache ? CacheSaltFor(id) : "");

    /// <summary>
    /// A stable salt for a tenant: <c>t-</c> + 32 hex characters of SHA-256 of the tenant id. It does not need to be
    /// secret (the worker never reveals cache keys across salts); it needs to be distinct per tenant and stable across
    /// gateway replicas and restarts, which a hash of the id is.
    /// </summary>
    public static string CacheSaltFor(string tenantId) =>
        "t-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("kosmos2/embedding-cache/" + tenantId)))[..32];
}
