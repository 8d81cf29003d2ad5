using Grpc.Core;
using Kosmos2.ServiceDefaults;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// What a client gets when a handler ends with an error: after the call's deadline passed it is DEADLINE_EXCEEDED
/// whatever the hop below answered, so the caller's status does not depend on which hop's timer fired first.
/// </summary>
public sealed class ErrorInterceptorTests
{
    private static readonly ErrorInterceptor Interceptor = new(NullLogger<ErrorInterceptor>.Instance);

    public static TheoryData<StatusCode> WorkerStatuses => [StatusCode.Unavailable, StatusCode.Cancelled, StatusCode.Internal, StatusCode.ResourceExhausted];

    [Theory]
    [MemberData(nameof(WorkerStatuses))]
    public async Task A_worker_status_after_the_deadline_reaches_the_caller_as_deadline_exceeded(StatusCode workerStatus)
    {
        var passed = new CallContext(DateTime.UtcNow.AddMilliseconds(-1));
        var ex = await Assert.ThrowsAsync<RpcException>(() => Run(passed, new RpcException(new Status(workerStatus, "reset by the worker"))));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal(StatusCode.DeadlineExceeded, ErrorInterceptor.StatusOf(new RpcException(new Status(workerStatus, "")), passed));
    }

    [Fact]
    public async Task A_cancellation_after_the_deadline_is_deadline_exceeded_and_before_it_cancelled()
    {
        var passed = await Assert.ThrowsAsync<RpcException>(() => Run(new CallContext(DateTime.UtcNow.AddMilliseconds(-1)), new OperationCanceledException()));
        Assert.Equal(StatusCode.DeadlineExceeded, passed.StatusCode);

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var early = await Assert.ThrowsAsync<RpcException>(() => Run(new CallContext(DateTime.MaxValue, cancelled.Token), new OperationCanceledException()));
        Assert.Equal(StatusCode.Cancelled, early.StatusCode);
    }

    [Fact]
    public async Task Before_the_deadline_a_worker_status_passes_unchanged()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            Run(new CallContext(DateTime.UtcNow.AddMinutes(1)), new RpcException(new Status(StatusCode.Unavailable, "No decoder worker is ready"))));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("No decoder worker is ready", ex.Status.Detail);
    }

    private static Task Run(ServerCallContext context, Exception thrown) =>
        Interceptor.ServerStreamingServerHandler<string, string>("", null!, context, (_, _, _) => throw thrown);

    private sealed class CallContext : ServerCallContext
    {
        private readonly DateTime _deadline;
        private readonly CancellationToken _cancellation;

        public CallContext(DateTime deadline, CancellationToken cancellation = default)
        {
            (_deadline, _cancellation) = (deadline, cancellation);
            UserState["__HttpContext"] = new DefaultHttpContext();
        }

        protected override string MethodCore => "/kosmos2.v1.Kosmos2/Generate";
        protected override string HostCore => "localhost";
        protected override string PeerCore => "ipv4:127.0.0.1:0";
        protected override DateTime DeadlineCore => _deadline;
        protected override Metadata RequestHeadersCore { get; } = [];
        protected override CancellationToken CancellationTokenCore => _cancellation;
        protected override Metadata ResponseTrailersCore { get; } = [];
        protected override Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
