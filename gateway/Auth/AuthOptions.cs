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
    /// Gives each tenant its own embedding-cache namespace (<see cref="Tenant.EmbeddingCacheSalt"/>). Off by default
    /// because it costs cache hits across tenants; see <see cref="Tenant"/> for why one would turn it on.
    /// </summary>
    public bool SaltEmbeddingCacheByTenant { get; set; }

    /// <summary>
    /// Lets a gateway with no key listen beyond loopback, every call let in as tenant <c>local</c>. Off: such a gateway
    /// refuses to start (fail closed), so a forgotten key file never exposes an open gateway.
    /// </summary>
    public bool AllowAnonymous { get; set; }
}
