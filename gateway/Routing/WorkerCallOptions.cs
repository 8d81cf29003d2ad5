using Grpc.Core;

namespace Kosmos2.Gateway.Routing;

/// <summary>Options of a worker call made on behalf of an incoming call: its deadline and cancellation flow down.</summary>
public static class WorkerCallOptions
{
    /// <summary>
    /// The incoming call's deadline (none when the client set none) and cancellation token, so a client that goes
    /// away or times out frees the worker's slot within one step.
    /// </summary>
    /// <remarks>
    /// Wait-for-ready: a worker that is starting or reconnecting (its subchannel in backoff) makes the call wait until
    /// a worker is ready, within the caller's deadline or cancellation, instead of failing at once with UNAVAILABLE —
    /// seen when the gateway started before its workers listened.
    /// </remarks>
    public static CallOptions From(ServerCallContext context) =>
        new CallOptions(deadline: context.Deadline == DateTime.MaxValue ? null : context.Deadline, cancellationToken: context.CancellationToken).WithWaitForReady();

    /// <summary>Like <see cref="From(ServerCallContext)"/>, with the wait bounded by <paramref name="limit"/> when the caller set no shorter deadline (short unary calls).</summary>
    public static CallOptions From(ServerCallContext context, TimeSpan limit)
    {
        var capped = DateTime.UtcNow + limit;
        return new CallOptions(deadline: context.Deadline < capped ? context.Deadline : capped, cancellationToken: context.CancellationToken).WithWaitForReady();
    }
}
