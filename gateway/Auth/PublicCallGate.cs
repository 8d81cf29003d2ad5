using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Kosmos2.Gateway.Generation;
using Kosmos2.Gateway.Quotas;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Admits a call of the public service on its headers alone, before a byte of its body is read: the API key
/// (<c>authorization: Bearer KEY</c> or <c>x-api-key: KEY</c>) names the tenant, the tenant's quota must have room, and
/// the call gets a deadline no later than <see cref="GatewayOptions.MaxCallSeconds"/>. A refused call is answered at once
/// (gRPC: a trailers-only response with its status; HTTP/JSON: 401/429 with <c>{code, message}</c>), so an
/// unauthenticated client never makes the gateway buffer the up-to-40 MB message that grpc-dotnet reads before any
/// interceptor runs. Health, reflection, the page and metrics are not the public service and pass untouched.
/// </summary>
public sealed partial class PublicCallGate(RequestDelegate next, ApiKeyStore keys, TenantQuotas quotas, GatewayMetrics metrics,
    IOptions<GatewayOptions> options)
{
    private const string HowToSend = "send it in the `authorization: Bearer <key>` or `x-api-key: <key>` metadata entry";

    private readonly long _maxCallTicks = TimeSpan.FromSeconds(options.Value.MaxCallSeconds).Ticks;

    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>();
        if (method is null || method.ServiceType != typeof(Kosmos2ApiService))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var watch = Stopwatch.StartNew();
        Tenant tenant;
        if (keys.IsOpen)
        {
            tenant = keys.OpenTenant;
        }
        else
        {
            var presented = ReadKey(context.Request.Headers);
            if (presented is null)
            {
                await RefuseAsync(context, method.Method.Name, StatusCode.Unauthenticated, $"Missing API key: {HowToSend}.", null, watch).ConfigureAwait(false);
                return;
            }
            if (keys.Authenticate(presented) is not { } known)
            {
                await RefuseAsync(context, method.Method.Name, StatusCode.Unauthenticated,
                    $"Invalid API key: the key is not known to this gateway; {HowToSend}.", null, watch).ConfigureAwait(false);
                return;
            }
            tenant = known;
        }
        context.SetTenant(tenant);
        Activity.Current?.SetTag("kosmos2.tenant", tenant.Id);
        if (!quotas.TryAdmit(tenant, out var lease, out var refusal))
        {
            await RefuseAsync(context, method.Method.Name, StatusCode.ResourceExhausted, refusal.Message, refusal.RetryAfter, watch).ConfigureAwait(false);
            return;
        }
        using (lease)
        {
            BoundDeadline(context.Request.Headers);
            await next(context).ConfigureAwait(false);
        }
    }

    /// <summary>The key from <c>authorization: Bearer KEY</c> (scheme case-insensitive), else <c>x-api-key</c>.</summary>
    internal static string? ReadKey(IHeaderDictionary headers)
    {
        var authorization = headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && authorization.Length > Scheme.Length)
        {
            return authorization[Scheme.Length..].Trim();
        }
        return headers["x-api-key"].ToString() is { Length: > 0 } apiKey ? apiKey.Trim() : null;
    }

    /// <summary>
    /// Sets <c>grpc-timeout</c> to the longest a call may last when the client asked for longer or for no deadline, so
    /// grpc-dotnet ends a stream that is held open (a client that stops reading) with DEADLINE_EXCEEDED.
    /// </summary>
    private void BoundDeadline(IHeaderDictionary headers)
    {
        if (TryParseGrpcTimeout(headers["grpc-timeout"].ToString(), out var asked) && asked.Ticks <= _maxCallTicks)
        {
            return;
        }
        headers["grpc-timeout"] = (_maxCallTicks / TimeSpan.TicksPerSecond).ToString(CultureInfo.InvariantCulture) + "S";
    }

    /// <summary>Parses gRPC's <c>grpc-timeout</c> (1–8 digits and a unit: H, M, S, m, u, n).</summary>
    internal static bool TryParseGrpcTimeout(string value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length is < 2 or > 9 || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }
        long? ticks = value[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * 10,
            'n' => amount / 100,
            _ => null,
        };
        if (ticks is null)
        {
            return false;
        }
        timeout = TimeSpan.FromTicks(ticks.Value);
        return true;
    }

    private async Task RefuseAsync(HttpContext context, string method, StatusCode status, string message, TimeSpan? retryAfter, Stopwatch watch)
    {
        metrics.RecordRequest(method, RequestOutcomeInterceptor.StatusName(status), watch.Elapsed.TotalSeconds);
        var response = context.Response;
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true)
        {
            RpcErrors.WriteTrailersOnly(response, status, message, retryAfter); // the body is never read
            return;
        }
        // HTTP/JSON (transcoded) calls: the status JSON transcoding itself answers with.
        if (retryAfter is { } wait)
        {
            RpcErrors.AddRetryHint(response.Headers, wait);
        }
        response.StatusCode = status == StatusCode.Unauthenticated ? StatusCodes.Status401Unauthorized : StatusCodes.Status429TooManyRequests;
        response.ContentType = "application/json";
        await response.WriteAsync(JsonSerializer.Serialize(new { code = (int)status, message, details = Array.Empty<object>() }), context.RequestAborted).ConfigureAwait(false);
    }
}
