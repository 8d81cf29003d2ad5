using Grpc.Core;

namespace Kosmos2.Gateway.Routing;

/// <summary>Options of a worker call made on behalf of an incoming call: its deadline and cancellation flow down.</summary>
public static class WorkerCallOptions
{
    /// <summary>
    /// The incoming call's deadline (none when the client set none) and cancellation token, so a client that goes
    /// away or times out frees the worker's slot within one step.
    /// </summary>
    public static CallOptions From(ServerCallContext context) =>
        new(deadline: context.Deadline == DateTime.MaxValue ? null : context.Deadline, cancellationToken: context.CancellationToken);
}
