namespace Kosmos2.Gateway.Auth;

/// <summary>
/// API keys, bound from the <c>Auth</c> section (environment: <c>Auth__ApiKeys__0__Key</c>,
/// <c>Auth__ApiKeys__0__Tenant</c>, <c>Auth__ApiKeysFile</c>, …). With no key and no key file the gateway runs open, but
/// only on loopback or with <see cref="AllowAnonymous"/>.
/// </summary>
public sealed class AuthOptions
{
    public const string SectionName = "Auth";

    /// <summary>Keys given in configuration, each bound to a tenant.</summary>
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>
    /// A JSON file <c>[{"key": "...", "tenant": "..."}]</c>, e.g. a mounted Kubernetes Secret; re-read when it changes.
    /// Once set, the gateway never runs open: a missing or unreadable file means no key is accepted.
    /// </summary>
    public string? ApiKeysFile { get; set; }

    /// <summary>How often the key file's content is checked for changes, in seconds (0: on every call).</summary>
    public double ApiKeysFileCheckSeconds { get; set; } = 2;

    /// <summary>
    /// Gives each tenant its own embedding-cache namespace (<see cref="Tenant.EmbeddingCacheSalt"/>), so images belong to
    /// the tenant that sent them. On by default; false makes one cache shared by every tenant (a hash-only request then
    /// finds any tenant's image): only for tenants that trust each other.
    /// </summary>
    public bool SaltEmbeddingCacheByTenant { get; set; } = true;

    /// <summary>
    /// The server secret that keys each tenant's cache namespace (<see cref="TenantCacheSalts"/>); the same on every
    /// gateway replica. Unset: the cluster's <c>Internal:Secret</c>, else a random key per process.
    /// </summary>
    public string? EmbeddingCacheSecret { get; set; }

    /// <summary>The quota of every key that sets none, and of the open gateway's tenant; unset figures are no limit.</summary>
    public Quotas.TenantQuota DefaultQuota { get; set; } = Quotas.TenantQuota.Unlimited;

    /// <summary>Shortest accepted API key, in characters (<see cref="Contracts.V1.ApiKeyRules.MinLength"/>).</summary>
    public const int MinKeyLength = Contracts.V1.ApiKeyRules.MinLength;

    /// <summary>
    /// Lets a gateway with no key listen beyond loopback, every call let in as tenant <c>local</c>. Off: such a gateway
    /// refuses to start (fail closed), so a forgotten key file never exposes an open gateway.
    /// </summary>
    public bool AllowAnonymous { get; set; }
}
