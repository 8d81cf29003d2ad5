using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Grpc.Core;

namespace Kosmos2.VisionWorker;

/// <summary>Throw helpers: each status says what to fix.</summary>
internal static class EncodeErrors
{
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void InvalidArgument(string message) =>
        throw new RpcException(new Status(StatusCode.InvalidArgument, message));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NotFound(string message) =>
        throw new RpcException(new Status(StatusCode.NotFound, message));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Busy(int queued) =>
        throw new RpcException(new Status(StatusCode.ResourceExhausted,
            $"The vision encoder queue is full ({queued} images waiting): retry later or on another worker."));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NotReady() =>
        throw new RpcException(new Status(StatusCode.Unavailable, "The vision model is still loading: retry shortly."));
}
