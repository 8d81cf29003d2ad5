namespace Kosmos2.Gateway.Sessions;

/// <summary>The one place a session record moves forward by a turn; both stores use it, so they agree.</summary>
internal static class SessionTurnBuilder
{
    public static SessionRecord Append(SessionRecord current, NewTurn turn, DateTimeOffset now, TimeSpan ttl, GatewayOptions options)
    {
        SessionLimits.EnsureTurnAllowed(current.Turns.Count, options);
        var contextTokens = current.ContextTokenIds.Count + turn.PromptTokenIds.Count + turn.GeneratedTokenIds.Count;
        SessionLimits.EnsureContextAllowed(contextTokens, options);

        var context = new int[contextTokens];
        var at = 0;
        foreach (var part in new[] { current.ContextTokenIds, turn.PromptTokenIds, turn.GeneratedTokenIds })
        {
            foreach (var id in part)
            {
                context[at++] = id;
            }
        }
        return current with
        {
            ContextTokenIds = context,
            Turns = [.. current.Turns, turn.Turn],
            ExpiresAt = now + ttl,
            LastDecoderAddress = turn.DecoderAddress ?? current.LastDecoderAddress,
            Version = current.Version + 1,
        };
    }

    public static SessionRecord Create(NewSession session, string id, DateTimeOffset now, TimeSpan ttl) => new()
    {
        Id = id,
        Tenant = session.Tenant,
        Image = session.Image,
        Options = session.Options,
        ContextTokenIds = [.. session.InitialContextTokenIds],
        CreatedAt = now,
        ExpiresAt = now + ttl,
        Version = 0,
    };
}
