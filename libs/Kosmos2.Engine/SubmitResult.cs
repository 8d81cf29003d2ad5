namespace Kosmos2.Engine;

/// <summary>
/// The synchronous answer to <see cref="GenerationEngine.Submit"/>: accepted with the engine's id, or refused
/// with a reason, so the transport can answer before writing any message.
/// </summary>
public readonly record struct SubmitResult(long RequestId, RejectionReason? Rejection, string? Message)
{
    /// <summary>True when the request was queued; its sink will get exactly one <see cref="IRequestSink.OnFinished"/>.</summary>
    public bool IsAccepted => Rejection is null;

    internal static SubmitResult Accepted(long requestId) => new(requestId, null, null);

    internal static SubmitResult Rejected(RejectionReason reason, string message) => new(0, reason, message);
}
