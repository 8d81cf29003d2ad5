using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Authenticates every call of the public Kosmos2 service (it is registered for that service only, so health and
/// reflection stay open): reads the key from <c>authorization: Bearer KEY</c> or <c>x-api-key: KEY</c>, rejects a
/// missing or unknown key with UNAUTHENTICATED, and leaves the tenant for the handler
/// (<see cref="TenantAccessor.GetTenant"/>).
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyStore keys) : Interceptor
{
    private const string HowToSend = "send it in the `authorization: Bearer <key>` or `x-api-key: <key>` metadata entry";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authenticate(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authenticate(ServerCallContext context)
    {
        Tenant tenant;
        if (keys.IsOpen)
        {
            tenant = keys.OpenTenant;
        }
        else
        {
            var presented = ReadKey(context.RequestHeaders);
            if (presented is null)
            {
                RpcErrors.Unauthenticated($"Missing API key: {HowToSend}.");
            }
            tenant = keys.Authenticate(presented) ?? RejectWrongKey();
        }
        context.SetTenant(tenant);
        Activity.Current?.SetTag("kosmos2.tenant", tenant.Id);
    }

    /// <summary>The key from <c>authorization: Bearer KEY</c> (scheme case-insensitive), else <c>x-api-key</c>.</summary>
    internal static string? ReadKey(Metadata headers)
    {
        if (headers.GetValue("authorization") is { } authorization)
        {
            const string Scheme = "Bearer ";
            if (authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && authorization.Length > Scheme.Length)
            {
                return authorization[Scheme.Length..].Trim();
            }
        }
        return headers.GetValue("x-api-key") is { Length: > 0 } apiKey ? apiKey.Trim() : null;
    }

    private static Tenant RejectWrongKey()
    {
        RpcErrors.Unauthenticated($"Invalid API key: the key is not known to this gateway; {HowToSend}.");
        return null;
    }
}
