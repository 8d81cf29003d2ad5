using System.Diagnostics;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Generation;

/// <summary>
/// Counts every call of the public service under the status its client got (<c>OK</c>, <c>INVALID_ARGUMENT</c>,
/// <c>RESOURCE_EXHAUSTED</c>, …), with its duration; calls refused on their headers (no key, over quota) are counted by
/// <see cref="Auth.PublicCallGate"/>. An exception that is not an <see cref="RpcException"/> counts as what
/// <see cref="ErrorInterceptor"/> turns it into.
/// </summary>
public sealed partial class RequestOutcomeInterceptor(GatewayMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            Record(context, StatusCode.OK, watch);
            return response;
        }
        catch (Exception ex)
        {
            Record(context, ErrorInterceptor.StatusOf(ex, context), watch);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            Record(context, StatusCode.OK, watch);
        }
        catch (Exception ex)
        {
            Record(context, ErrorInterceptor.StatusOf(ex, context), watch);
            throw;
        }
    }

    /// <summary>gRPC's own spelling of a status: <c>InvalidArgument</c> → <c>INVALID_ARGUMENT</c>.</summary>
    public static string StatusName(StatusCode status) => status == StatusCode.OK ? "OK" : WordStart().Replace(status.ToString(), "_$1").ToUpperInvariant();

    private void Record(ServerCallContext context, StatusCode status, Stopwatch watch) =>
        metrics.RecordRequest(context.Method[(context.Method.LastIndexOf('/') + 1)..], StatusName(status), watch.Elapsed.TotalSeconds);

    [GeneratedRegex("(?<=[a-z])([A-Z])")]
    private static partial Regex WordStart();
}
