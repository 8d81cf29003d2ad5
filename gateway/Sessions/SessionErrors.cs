using System.Diagnostics.CodeAnalysis;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Sessions;

/// <summary>Session statuses with one wording each, so a client cannot tell "another tenant's" from "missing".</summary>
public static class SessionErrors
{
    [DoesNotReturn]
    public static void NotFound(string sessionId) =>
        RpcErrors.NotFound($"Session '{Shorten(sessionId)}' was not found: it may have expired or been deleted; create a new session.");

    [DoesNotReturn]
    public static void Conflict(string sessionId) =>
        RpcErrors.Aborted($"Session '{Shorten(sessionId)}' received another turn while this one was generating; send this turn again.");

    // An id is echoed for the client's logs, but never a whole megabyte of whatever was sent as one.
    private static string Shorten(string id) => id.Length <= 64 ? id : id[..64] + "…";
}
