namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Who a call is made for, as its API key says.
/// </summary>
/// <param name="Id">The tenant's name from the key configuration; <c>local</c> when the gateway runs open.</param>
/// <param name="EmbeddingCacheSalt">
/// Goes into the vision worker's cache key (<c>EncodeRequest.cache_salt</c>), from <see cref="TenantCacheSalts"/>; empty =
/// the cache shared by all tenants. Images belong to tenants: a hash-only request finds only the images its own tenant
/// sent, and a cache hit (answered in ≈ 0.5 ms instead of a 0.5–1.3 s encode, and reported in
/// <c>Timings.image_cache_hit</c>) never tells one tenant that another sent the same image.
/// </param>
/// <param name="Quota">What the tenant may use, from the key it presented (<see cref="Quotas.TenantQuota"/>).</param>
public sealed record Tenant(string Id, string EmbeddingCacheSalt, Quotas.TenantQuota Quota)
{
    /// <summary>The tenant of an open gateway (no key configured).</summary>
    public const string LocalId = "local";
}
