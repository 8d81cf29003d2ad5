namespace Kosmos2.Gateway.Quotas;

/// <summary>
/// What one tenant may use, set per API key (<c>Auth:ApiKeys:0:Quota:MaxInFlight</c>, or <c>"quota": {…}</c> in the key
/// file) or for every key that sets none (<c>Auth:DefaultQuota</c>). An unset limit is no limit. Usage is counted per
/// tenant on each gateway replica: with N replicas behind a balancer a tenant gets up to N times each figure.
/// </summary>
public sealed record TenantQuota
{
    /// <summary>Calls per second, as a token bucket holding one second's worth (at least one call).</summary>
    public double? RequestsPerSecond { get; init; }

    /// <summary>Prompt plus generated tokens in any 60 s.</summary>
    public long? TokensPerMinute { get; init; }

    /// <summary>Streams at once; a phrase-grounding call counts one per phrase (each is a decoder slot).</summary>
    public int? MaxInFlight { get; init; }

    /// <summary>No limit at all.</summary>
    public static readonly TenantQuota Unlimited = new();
}
