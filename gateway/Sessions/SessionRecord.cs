using Kosmos2.Contracts.V1;
using SessionOptions = Kosmos2.Contracts.V1.SessionOptions;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// A chat session as stored: everything a later turn needs to continue exactly where the last one ended.
/// Immutable: a turn produces a new record (<see cref="ISessionStore.AppendTurnAsync"/>).
/// </summary>
public sealed record SessionRecord
{
    /// <summary>Random 128-bit id, base64url (22 characters); see <see cref="SessionIds"/>.</summary>
    public required string Id { get; init; }

    /// <summary>The tenant that created it; other tenants cannot see it.</summary>
    public required string Tenant { get; init; }

    /// <summary>The image the session is about.</summary>
    public required SessionImage Image { get; init; }

    /// <summary>Options given at creation (grounding, default sampling and stopping).</summary>
    public required SessionOptions Options { get; init; }

    /// <summary>
    /// The exact token ids of the context so far, the image placeholders included: the initial context, then for
    /// every turn its prompt ids and its generated ids, in order. The next turn's prompt is appended to these.
    /// </summary>
    public required IReadOnlyList<int> ContextTokenIds { get; init; }

    /// <summary>Turns so far, oldest first.</summary>
    public IReadOnlyList<SessionTurn> Turns { get; init; } = [];

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the session expires unless a turn is sent first (every turn moves it).</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary><c>host:port</c> of the decoder that served the last turn: the next turn's affinity hint.</summary>
    public string? LastDecoderAddress { get; init; }

    /// <summary>Number of turns appended so far; the optimistic-concurrency token of <see cref="ISessionStore.AppendTurnAsync"/>.</summary>
    public long Version { get; init; }
}

/// <summary>The session's image: enough to find its embeddings again (hash + salt) and to map boxes (size).</summary>
/// <param name="Sha256">Lower-case hex SHA-256 of the image file.</param>
/// <param name="Width">Original width in pixels.</param>
/// <param name="Height">Original height in pixels.</param>
/// <param name="CacheSalt">The tenant's embedding-cache salt the image was encoded under (empty: shared cache).</param>
public sealed record SessionImage(string Sha256, int Width, int Height, string CacheSalt);

/// <summary>One turn: what was asked, what was answered, and what it added to the context.</summary>
public sealed record SessionTurn
{
    /// <summary>The question as the user sent it.</summary>
    public required string Text { get; init; }

    /// <summary>The regions the question referred to.</summary>
    public IReadOnlyList<Region> Regions { get; init; } = [];

    /// <summary>The answer's clean text.</summary>
    public required string Answer { get; init; }

    /// <summary>The answer's grounded entities.</summary>
    public IReadOnlyList<Entity> Entities { get; init; } = [];

    /// <summary>Tokens the question added to the context.</summary>
    public required int PromptTokens { get; init; }

    /// <summary>Tokens generated for the answer.</summary>
    public required int GeneratedTokens { get; init; }
}

/// <summary>What <see cref="ISessionStore.CreateAsync"/> needs: the rest (id, times, version) is the store's.</summary>
/// <param name="Tenant">The creating tenant.</param>
/// <param name="Image">The encoded image.</param>
/// <param name="Options">The session options.</param>
/// <param name="InitialContextTokenIds">The context before the first question (e.g. <c>&lt;s&gt;</c> and the image span), possibly empty.</param>
public sealed record NewSession(string Tenant, SessionImage Image, SessionOptions Options, IReadOnlyList<int> InitialContextTokenIds)
{
    /// <summary>
    /// The image's embeddings as the vision worker returned them, kept with the session for its whole life
    /// (<see cref="ISessionStore.GetEmbeddingsAsync"/>): a later turn must not depend on the embedding cache, which may
    /// evict them at any time. Null stores none (the turn then asks the cache by hash).
    /// </summary>
    public Kosmos2.Contracts.Internal.V1.TensorBytes? Embeddings { get; init; }
}

/// <summary>A finished turn to append.</summary>
/// <param name="Turn">The turn's record (its token counts must match the id lists).</param>
/// <param name="PromptTokenIds">The ids the question added to the context.</param>
/// <param name="GeneratedTokenIds">The ids generated for the answer, as they go into the context.</param>
/// <param name="DecoderAddress">The decoder that served it (<c>DecoderGeneration.Address</c>).</param>
public sealed record NewTurn(SessionTurn Turn, IReadOnlyList<int> PromptTokenIds, IReadOnlyList<int> GeneratedTokenIds, string? DecoderAddress);
