using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Each tenant's embedding-cache namespace: <c>t-</c> + 32 hex characters of HMAC-SHA256(server secret, tenant id).
/// A keyed hash, not a bare hash of the id: a caller that reaches a vision worker directly cannot compute another
/// tenant's salt from its name. The secret is <see cref="AuthOptions.EmbeddingCacheSecret"/>, else the cluster's
/// internal secret (the one the gateway sends its workers, <see cref="InternalSecrets.CallerSecret"/>), else a random one per
/// process (logged: then hash-only requests and cache hits do not carry over to another gateway replica or a restart,
/// but isolation holds). Changing it starts every tenant's namespace afresh: images are encoded again, hash-only
/// requests for older images are NOT_FOUND until sent again, and sessions keep the namespace they were created in.
/// </summary>
public sealed partial class TenantCacheSalts
{
    private readonly byte[] _key;
    private readonly bool _perTenant;
    private readonly ConcurrentDictionary<string, string> _salts = new(StringComparer.Ordinal);

    public TenantCacheSalts(IOptions<AuthOptions> options, InternalSecrets internalSecrets, ILogger<TenantCacheSalts> logger)
    {
        _perTenant = options.Value.SaltEmbeddingCacheByTenant;
        var secret = string.IsNullOrWhiteSpace(options.Value.EmbeddingCacheSecret) ? internalSecrets.CallerSecret : options.Value.EmbeddingCacheSecret.Trim();
        if (secret is null)
        {
            _key = RandomNumberGenerator.GetBytes(32);
            if (_perTenant)
            {
                LogRandomSecret(logger);
            }
        }
        else
        {
            _key = Encoding.UTF8.GetBytes(secret);
        }
    }

    /// <summary>The salt of <paramref name="tenantId"/>'s cache entries; empty when tenants share one cache.</summary>
    public string For(string tenantId) => _perTenant ? _salts.GetOrAdd(tenantId, Compute, _key) : "";

    /// <summary>Builds the tenant of <paramref name="tenantId"/> with its salt and quota.</summary>
    public Tenant TenantOf(string tenantId, Quotas.TenantQuota quota) => new(tenantId, For(tenantId), quota);

    private static string Compute(string tenantId, byte[] key) =>
        "t-" + Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("kosmos2/embedding-cache/" + tenantId)))[..32];

    [LoggerMessage(Level = LogLevel.Warning, Message =
        "No Auth:EmbeddingCacheSecret (or Internal:Secret) is set: tenants' cache namespaces use a random key of this process, so " +
        "hash-only requests and cache hits do not carry over to other gateway replicas or a restart. Set the same secret on every replica.")]
    private static partial void LogRandomSecret(ILogger logger);
}
