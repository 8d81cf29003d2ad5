using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// Last line of defence of every RPC: an <see cref="RpcException"/> passes as it is; a cancelled call
/// becomes CANCELLED; Redis out of reach (connection lost, timed out) becomes UNAVAILABLE, which a client may retry;
/// anything else is logged with the method and the request id and returned as INTERNAL, so a bug in one request never
/// takes the process down or leaks a stack trace to the client. Whatever a handler ends with after the call's deadline
/// passed is DEADLINE_EXCEEDED: a hop below may see the same deadline first and end its call otherwise (a worker's
/// stream reset reads as UNAVAILABLE), and the caller must get the same status whichever hop's timer fired first.
/// </summary>
public sealed partial class ErrorInterceptor(ILogger<ErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException || DeadlinePassedOver(ex, context))
        {
            throw Translate(ex, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not RpcException || DeadlinePassedOver(ex, context))
        {
            throw Translate(ex, context);
        }
    }

    /// <summary>The status a client gets for <paramref name="ex"/> thrown by a handler (what this interceptor makes of it).</summary>
    public static StatusCode StatusOf(Exception ex, ServerCallContext context) => ex switch
    {
        _ when DeadlinePassedOver(ex, context) => StatusCode.DeadlineExceeded,
        RpcException rpc => rpc.StatusCode,
        OperationCanceledException when context.CancellationToken.IsCancellationRequested => StatusCode.Cancelled,
        RedisConnectionException or RedisTimeoutException => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    /// <summary>True when the call's deadline has passed and <paramref name="ex"/> would report something else.</summary>
    private static bool DeadlinePassedOver(Exception ex, ServerCallContext context) =>
        context.Deadline <= DateTime.UtcNow && ex is not RpcException { StatusCode: StatusCode.DeadlineExceeded };

    private RpcException Translate(Exception ex, ServerCallContext context)
    {
        var requestId = context.GetHttpContext().TraceIdentifier;
        switch (StatusOf(ex, context))
        {
            case StatusCode.DeadlineExceeded:
                var ended = ex is RpcException rpc ? rpc.StatusCode.ToString() : ex.GetType().Name;
                LogDeadlinePassed(logger, context.Method, requestId, ended);
                return new RpcException(new Status(StatusCode.DeadlineExceeded, $"The call's deadline passed (request {requestId})."));
            case StatusCode.Cancelled:
                return new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled or its deadline passed."));
            case StatusCode.Unavailable:
                LogRedisUnavailable(logger, context.Method, requestId, ex.Message);
                return new RpcException(new Status(StatusCode.Unavailable, $"Redis (sessions and caches) is out of reach; retry shortly (request {requestId})."));
            default:
                LogUnhandled(logger, ex, context.Method, requestId);
                return new RpcException(new Status(StatusCode.Internal, $"Internal error in {context.Method} (request {requestId}); see the server log."));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception in {Method}, request {RequestId}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string requestId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deadline passed in {Method}, request {RequestId}; the handler ended with {Ended}, answered DEADLINE_EXCEEDED")]
    private static partial void LogDeadlinePassed(ILogger logger, string method, string requestId, string ended);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis out of reach in {Method}, request {RequestId}: {Reason}; answered UNAVAILABLE")]
    private static partial void LogRedisUnavailable(ILogger logger, string method, string requestId, string reason);
}
