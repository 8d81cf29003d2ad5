using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// Throw helpers for the statuses every service returns. Each message says what to fix; the helpers are
/// kept out of line so the checks that call them stay small.
/// </summary>
public static class RpcErrors
{
    /// <summary>INVALID_ARGUMENT: the request itself is wrong (a field out of range, a missing field).</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void InvalidArgument(string message) =>
        throw new RpcException(new Status(StatusCode.InvalidArgument, message));

    /// <summary>FAILED_PRECONDITION: the request is fine but the state it acts on does not allow it (a full session).</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void FailedPrecondition(string message) =>
        throw new RpcException(new Status(StatusCode.FailedPrecondition, message));

    /// <summary>NOT_FOUND.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NotFound(string message) =>
        throw new RpcException(new Status(StatusCode.NotFound, message));

    /// <summary>ABORTED: a concurrent change won; the client may retry.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Aborted(string message) =>
        throw new RpcException(new Status(StatusCode.Aborted, message));

    /// <summary>UNAUTHENTICATED.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Unauthenticated(string message) =>
        throw new RpcException(new Status(StatusCode.Unauthenticated, message));

    /// <summary>UNAVAILABLE: nothing can serve the call right now; retrying later may work.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Unavailable(string message) =>
        throw new RpcException(new Status(StatusCode.Unavailable, message));

    /// <summary>How long a full server asks a client to wait before trying again (a few engine steps or encodes).</summary>
    public static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>
    /// RESOURCE_EXHAUSTED: this server is full right now; another one, or a later retry, may take the call. The
    /// trailers carry the hint: <c>retry-after</c> (whole seconds, as HTTP's header) and <c>grpc-retry-pushback-ms</c>
    /// (what gRPC's own retry policy reads).
    /// </summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ResourceExhausted(string message, TimeSpan? retryAfter = null) =>
        throw ResourceExhaustedException(message, retryAfter);

    /// <summary>The exception <see cref="ResourceExhausted"/> throws, for code that builds its status elsewhere.</summary>
    public static RpcException ResourceExhaustedException(string message, TimeSpan? retryAfter = null)
    {
        var trailers = new Metadata();
        foreach (var (key, value) in RetryHint(retryAfter ?? DefaultRetryAfter))
        {
            trailers.Add(key, value);
        }
        return new RpcException(new Status(StatusCode.ResourceExhausted, message), trailers);
    }

    /// <summary>The retry hint's entries: <c>retry-after</c> in whole seconds (at least 1) and <c>grpc-retry-pushback-ms</c>.</summary>
    public static IEnumerable<(string Key, string Value)> RetryHint(TimeSpan wait)
    {
        yield return ("retry-after", Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
        yield return ("grpc-retry-pushback-ms", ((long)wait.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Answers a gRPC call from middleware, before its body is read: a trailers-only response (the status, and the retry
    /// hint when given, travel in the response headers and the stream ends), as grpc-dotnet itself answers a failed call.
    /// </summary>
    public static void WriteTrailersOnly(HttpResponse response, StatusCode status, string message, TimeSpan? retryAfter = null)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)status).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        if (retryAfter is { } wait)
        {
            AddRetryHint(response.Headers, wait);
        }
    }

    /// <summary>Sets the <see cref="RetryHint"/> headers on an HTTP response (trailers-only gRPC, or HTTP/JSON).</summary>
    public static void AddRetryHint(IHeaderDictionary headers, TimeSpan wait)
    {
        foreach (var (key, value) in RetryHint(wait))
        {
            headers[key] = value;
        }
    }

    /// <summary>INVALID_ARGUMENT for a value over its limit: "image.data is 25 MB; the limit is 20 MB (Gateway:MaxImageBytes)".</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void OverLimit(string field, string actual, string limit, string setting) =>
        InvalidArgument($"{field} is {actual}; the limit is {limit} ({setting}).");
}
