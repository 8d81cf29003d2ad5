using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// The limits of one session and what happens at them.
/// <para>
/// Policy: a session never drops or summarises history (the model would answer about a context the client no
/// longer sees). Instead:
/// <list type="bullet">
/// <item>A turn beyond <c>Gateway:MaxSessionTurns</c> is rejected with FAILED_PRECONDITION
/// ("session has N turns; the limit is M (Gateway:MaxSessionTurns): start a new session"); the session is unchanged.</item>
/// <item>A turn whose question alone leaves no room for one generated token within <c>Gateway:MaxSessionTokens</c>, or
/// within the decoders' <c>Decoder:MaxSequenceTokens</c> when that is smaller, is rejected the same way, before any
/// generation.</item>
/// <item>Otherwise the turn's max_new_tokens is lowered to the room left (<see cref="RoomForNewTokens"/>); the answer
/// then ends with FINISH_REASON_LENGTH, and the next turn is rejected by the rule above.</item>
/// </list>
/// <see cref="ISessionStore.AppendTurnAsync"/> checks both limits again when it writes, as a backstop.
/// </para>
/// </summary>
public static class SessionLimits
{
    /// <summary>
    /// Checks that <paramref name="session"/> can take one more turn whose question adds <paramref name="promptTokens"/>
    /// tokens, and returns how many new tokens fit: min(<paramref name="requestedMaxNewTokens"/>, the room left).
    /// </summary>
    /// <param name="session">The session.</param>
    /// <param name="promptTokens">Tokens the turn's question adds.</param>
    /// <param name="requestedMaxNewTokens">The turn's max_new_tokens.</param>
    /// <param name="options">The gateway's limits.</param>
    /// <param name="decoderMaxSequenceTokens">
    /// The decoders' context (<c>Decoder:MaxSequenceTokens</c>, learned from their GetInfo), or null while unknown; the
    /// smaller of it and <c>Gateway:MaxSessionTokens</c> is the limit, so a turn a decoder would refuse never reaches it.
    /// </param>
    public static int RoomForNewTokens(SessionRecord session, int promptTokens, int requestedMaxNewTokens, GatewayOptions options, int? decoderMaxSequenceTokens = null)
    {
        EnsureTurnAllowed(session.Turns.Count, options);
        var (limit, setting) = decoderMaxSequenceTokens is { } decoder && decoder < options.MaxSessionTokens
            ? (decoder, "the decoders' Decoder:MaxSequenceTokens")
            : (options.MaxSessionTokens, $"Gateway:{nameof(GatewayOptions.MaxSessionTokens)}");
        var room = limit - session.ContextTokenIds.Count - promptTokens;
        if (room < 1)
        {
            RpcErrors.FailedPrecondition(
                $"Session has {session.ContextTokenIds.Count} context tokens and this question adds {promptTokens}; the limit is " +
                $"{limit} ({setting}), which leaves no room for an answer: start a new session.");
        }
        return Math.Min(requestedMaxNewTokens, room);
    }

    /// <summary>FAILED_PRECONDITION when a session with <paramref name="turns"/> turns may not take another.</summary>
    public static void EnsureTurnAllowed(int turns, GatewayOptions options)
    {
        if (turns >= options.MaxSessionTurns)
        {
            RpcErrors.FailedPrecondition(
                $"Session has {turns} turns; the limit is {options.MaxSessionTurns} (Gateway:{nameof(GatewayOptions.MaxSessionTurns)}): start a new session.");
        }
    }

    /// <summary>FAILED_PRECONDITION when a context of <paramref name="contextTokens"/> tokens is over the limit.</summary>
    public static void EnsureContextAllowed(int contextTokens, GatewayOptions options)
    {
        if (contextTokens > options.MaxSessionTokens)
        {
            RpcErrors.FailedPrecondition(
                $"Session would have {contextTokens} context tokens; the limit is {options.MaxSessionTokens} (Gateway:{nameof(GatewayOptions.MaxSessionTokens)}): start a new session.");
        }
    }
}
