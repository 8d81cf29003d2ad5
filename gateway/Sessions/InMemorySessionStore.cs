using Google.Protobuf;
using Kosmos2.Contracts.Internal.V1;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// Sessions in this process, for local development without <c>redis-server</c>: same contract as
/// <see cref="RedisSessionStore"/> (records are stored serialized, so nothing is shared by reference), but they are
/// lost on restart and not shared between gateway replicas.
/// </summary>
public sealed class InMemorySessionStore(IOptions<GatewayOptions> options, TimeProvider time) : ISessionStore
{
    private readonly Dictionary<string, Entry> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly GatewayOptions _options = options.Value;

    private TimeSpan Ttl => TimeSpan.FromSeconds(_options.SessionTtlSeconds);

    public Task<SessionRecord> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            RemoveExpired();
            SessionRecord record;
            do
            {
                record = SessionTurnBuilder.Create(session, SessionIds.New(), time.GetUtcNow(), Ttl);
            }
            while (_sessions.ContainsKey(record.Id));
            _sessions[record.Id] = new Entry(SessionSerializer.Serialize(record), record.ExpiresAt, session.Embeddings?.ToByteArray());
            return Task.FromResult(record);
        }
    }

    public Task<SessionRecord?> GetAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(Read(tenant, sessionId));
        }
    }

    public Task<SessionRecord> AppendTurnAsync(string tenant, string sessionId, long expectedVersion, NewTurn turn, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var current = Read(tenant, sessionId);
            if (current is null)
            {
                SessionErrors.NotFound(sessionId);
            }
            if (current.Version != expectedVersion)
            {
                SessionErrors.Conflict(sessionId);
            }
            var next = SessionTurnBuilder.Append(current, turn, time.GetUtcNow(), Ttl, _options);
            _sessions[sessionId] = _sessions[sessionId] with { Data = SessionSerializer.Serialize(next), ExpiresAt = next.ExpiresAt };
            return Task.FromResult(next);
        }
    }

    public Task<TensorBytes?> GetEmbeddingsAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var embeddings = Read(tenant, sessionId) is not null ? _sessions[sessionId].Embeddings : null;
            return Task.FromResult(embeddings is null ? null : TensorBytes.Parser.ParseFrom(embeddings));
        }
    }

    public Task<bool> DeleteAsync(string tenant, string sessionId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(Read(tenant, sessionId) is not null && _sessions.Remove(sessionId));
        }
    }

    private SessionRecord? Read(string tenant, string sessionId)
    {
        if (!_sessions.TryGetValue(sessionId, out var entry))
        {
            return null;
        }
        if (entry.ExpiresAt <= time.GetUtcNow())
        {
            _sessions.Remove(sessionId);
            return null;
        }
        var record = SessionSerializer.Deserialize(entry.Data);
        return record?.Tenant == tenant ? record : null;
    }

    private void RemoveExpired()
    {
        var now = time.GetUtcNow();
        foreach (var (id, entry) in _sessions.Where(s => s.Value.ExpiresAt <= now).ToList())
        {
            _sessions.Remove(id);
        }
    }

    private sealed record Entry(byte[] Data, DateTimeOffset ExpiresAt, byte[]? Embeddings);
}
