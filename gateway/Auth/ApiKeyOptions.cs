namespace Kosmos2.Gateway.Auth;

/// <summary>One API key and the tenant it authenticates (configuration or key-file entry).</summary>
public sealed class ApiKeyOptions
{
    /// <summary>The secret the client sends.</summary>
    public string Key { get; set; } = "";

    /// <summary>The tenant the key belongs to: sessions and (optionally) the embedding cache are scoped by it.</summary>
    public string Tenant { get; set; } = "";

    /// <summary>When set, the key is refused from this instant on (ISO 8601, e.g. <c>2027-01-31T00:00:00Z</c>).</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>What calls with this key may use; unset: <see cref="AuthOptions.DefaultQuota"/>.</summary>
    public Quotas.TenantQuota? Quota { get; set; }
}
