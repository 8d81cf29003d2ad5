namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// Where chat sessions live: Redis (<see cref="RedisSessionStore"/>, survives gateway restarts, shared by replicas)
/// or this process (<see cref="InMemorySessionStore"/>, local development only).
/// Every read and write is scoped by tenant: another tenant's session id behaves exactly like a missing one.
/// </summary>
public interface ISessionStore
{
    /// <summary>Stores a new session with a fresh id, version 0 and the configured TTL.</summary>
    Task<SessionRecord> CreateAsync(NewSession session, CancellationToken cancellationToken = default);

    /// <summary>The session, or null when it does not exist, expired, is malformed or belongs to another tenant.</summary>
    Task<SessionRecord?> GetAsync(string tenant, string sessionId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends a finished turn if the session is still at <paramref name="expectedVersion"/> (the version read
    /// before generating), refreshing its TTL and recording the decoder as the affinity hint.
    /// Of two concurrent turns on one session only the first to append succeeds.
    /// </summary>
    /// <returns>The new record (version + 1).</returns>
    /// <exception cref="Grpc.Core.RpcException">
    /// NOT_FOUND (missing, expired or another tenant's); ABORTED (another turn was appended since
    /// <paramref name="expectedVersion"/>: the client may send its turn again); FAILED_PRECONDITION (the turn would
    /// exceed Gateway:MaxSessionTurns or Gateway:MaxSessionTokens, see <see cref="SessionLimits"/>).
    /// </exception>
    Task<SessionRecord> AppendTurnAsync(string tenant, string sessionId, long expectedVersion, NewTurn turn, CancellationToken cancellationToken = default);

    /// <summary>
    /// The image embeddings stored with the session (<see cref="NewSession.Embeddings"/>), or null when the session does
    /// not exist, belongs to another tenant, or was stored without them.
    /// </summary>
    Task<Kosmos2.Contracts.Internal.V1.TensorBytes?> GetEmbeddingsAsync(string tenant, string sessionId, CancellationToken cancellationToken = default);

    /// <summary>Deletes the session; false when there was none for this tenant.</summary>
    Task<bool> DeleteAsync(string tenant, string sessionId, CancellationToken cancellationToken = default);
}
