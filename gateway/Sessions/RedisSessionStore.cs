using Google.Protobuf;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// Sessions in Redis, one hash per session under <c>kosmos2:session:{id}</c>:
/// <c>d</c> = the record as UTF-8 JSON, <c>t</c> = tenant, <c>v</c> = version, <c>e</c> = the image embeddings
/// (protobuf <c>TensorBytes</c>, written once at creation; a turn rewrites only d, t and v). The key's TTL is the session's
/// lifetime. Writes are transactions conditioned on <c>t</c> (tenant scope) and, for a turn, on <c>v</c>
/// (optimistic concurrency: a turn computed from version n commits only while the session is still at n).
/// </summary>
public sealed class RedisSessionStore(IConnectionMultiplexer redis, IOptions<GatewayOptions> options, TimeProvider time) : ISessionStore
{
    /// <summary>Prefix of every session key.</summary>
    public const string KeyPrefix = "kosmos2:session:";

    private static readonly RedisValue DataField = "d";
    private static readonly RedisValue TenantField = "t";
    private static readonly RedisValue VersionField = "v";
    private static readonly RedisValue EmbeddingsField = "e";

    private readonly GatewayOptions _options = options.Value;

    private TimeSpan Ttl => TimeSpan.FromSeconds(_options.SessionTtlSeconds);

    /// <summary>The Redis key of a session.</summary>
    public static RedisKey KeyOf(string sessionId) => KeyPrefix + sessionId;

    public async Task<SessionRecord> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        var db = redis.GetDatabase();
        while (true)
        {
            var record = SessionTurnBuilder.Create(session, SessionIds.New(), time.GetUtcNow(), Ttl);
            var key = KeyOf(record.Id);
            var transaction = db.CreateTransaction();
            // A 128-bit id does not collide in practice; the condition makes that certain rather than likely.
            transaction.AddCondition(Condition.KeyNotExists(key));
            _ = transaction.HashSetAsync(key, session.Embeddings is { } embeddings
                ? [.. Fields(record), new HashEntry(EmbeddingsField, embeddings.ToByteArray())]
                : Fields(record));
            _ = transaction.KeyExpireAsync(key, Ttl);
            bool stored;
            try
            {
                stored = await transaction.ExecuteAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (ex.Message.StartsWith("OOM", StringComparison.Ordinal))
            {
                // The session store never evicts (sessions are data): full means no new session until others end.
                RpcErrors.ResourceExhausted("The session store is full (Redis maxmemory, noeviction): retry later, or end sessions you no longer need with DeleteSession.");
                throw;
            }
            if (stored)
            {
                return record;
            }
        }
    }

    public async Task<SessionRecord?> GetAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        if (!SessionIds.IsWellFormed(sessionId))
        {
            return null;
        }
        using var lease = await redis.GetDatabase().HashGetLeaseAsync(KeyOf(sessionId), DataField).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (lease is null)
        {
            return null;
        }
        var record = SessionSerializer.Deserialize(lease.Span);
        return record is not null && record.Tenant == tenant && record.Id == sessionId ? record : null;
    }

    public async Task<SessionRecord> AppendTurnAsync(string tenant, string sessionId, long expectedVersion, NewTurn turn, CancellationToken cancellationToken = default)
    {
        var current = await GetAsync(tenant, sessionId, cancellationToken).ConfigureAwait(false);
        if (current is null)
        {
            SessionErrors.NotFound(sessionId);
        }
        if (current.Version != expectedVersion)
        {
            SessionErrors.Conflict(sessionId);
        }
        var next = SessionTurnBuilder.Append(current, turn, time.GetUtcNow(), Ttl, _options);

        var key = KeyOf(sessionId);
        var transaction = redis.GetDatabase().CreateTransaction();
        transaction.AddCondition(Condition.HashEqual(key, TenantField, tenant));
        transaction.AddCondition(Condition.HashEqual(key, VersionField, expectedVersion));
        _ = transaction.HashSetAsync(key, Fields(next));
        _ = transaction.KeyExpireAsync(key, Ttl);
        if (!await transaction.ExecuteAsync().WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            // Between the read and the write the session got another turn, or was deleted or expired.
            if (await GetAsync(tenant, sessionId, cancellationToken).ConfigureAwait(false) is null)
            {
                SessionErrors.NotFound(sessionId);
            }
            SessionErrors.Conflict(sessionId);
        }
        return next;
    }

    public async Task<TensorBytes?> GetEmbeddingsAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        if (!SessionIds.IsWellFormed(sessionId))
        {
            return null;
        }
        var values = await redis.GetDatabase().HashGetAsync(KeyOf(sessionId), [TenantField, EmbeddingsField]).WaitAsync(cancellationToken).ConfigureAwait(false);
        return values[0] == tenant && values[1].HasValue ? TensorBytes.Parser.ParseFrom((byte[])values[1]!) : null;
    }

    public async Task<bool> DeleteAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        if (!SessionIds.IsWellFormed(sessionId))
        {
            return false;
        }
        var key = KeyOf(sessionId);
        var transaction = redis.GetDatabase().CreateTransaction();
        transaction.AddCondition(Condition.HashEqual(key, TenantField, tenant));
        var deleted = transaction.KeyDeleteAsync(key);
        return await transaction.ExecuteAsync().WaitAsync(cancellationToken).ConfigureAwait(false) && await deleted.ConfigureAwait(false);
    }

    private static HashEntry[] Fields(SessionRecord record) =>
    [
        new(TenantField, record.Tenant),
        new(VersionField, record.Version),
        new(DataField, SessionSerializer.Serialize(record)),
    ];
}
