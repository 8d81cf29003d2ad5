using System.Net;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// The secret the gateway and the workers share, from the <c>Internal</c> section: <c>Internal:Secret</c> (environment
/// <c>Internal__Secret</c>) and/or <c>Internal:SecretFile</c> (a mounted Kubernetes Secret), one secret per line. Callers
/// send the first in the <see cref="InternalCallAuth.Header"/> header; workers accept any of them, so a rotation can add
/// the new secret beside the old one, switch which comes first, then drop the old one, without a failed call.
/// </summary>
public sealed class InternalSecrets
{
    public const string SecretSetting = "Internal:Secret";

    public const string SecretFileSetting = "Internal:SecretFile";

    private readonly byte[][] _hashes;

    private InternalSecrets(IReadOnlyList<string> secrets, string source)
    {
        CallerSecret = secrets.Count > 0 ? secrets[0] : null;
        _hashes = [.. secrets.Select(Hash)];
        Source = source;
    }

    /// <summary>What a caller sends; null when no secret is configured.</summary>
    public string? CallerSecret { get; }

    public bool IsSet => CallerSecret is not null;

    /// <summary>Where the secrets came from, for logs (never the secrets themselves).</summary>
    public string Source { get; }

    /// <summary>
    /// Reads the secrets. A configured <c>Internal:SecretFile</c> that is missing, unreadable or empty is an error, not
    /// "no secret": a Secret that failed to mount must not turn the check off.
    /// </summary>
    public static InternalSecrets Load(IConfiguration configuration)
    {
        var secrets = new List<string>();
        var sources = new List<string>();
        if (configuration[SecretSetting] is { } inline && !string.IsNullOrWhiteSpace(inline))
        {
            secrets.Add(inline.Trim());
            sources.Add(SecretSetting);
        }
        if (configuration[SecretFileSetting] is { } path && !string.IsNullOrWhiteSpace(path))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"{SecretFileSetting} is {path}, which cannot be read ({ex.Message}). Mount the " +
                                                    $"internal Secret there, or unset {SecretFileSetting} and set {SecretSetting}.", ex);
            }
            var fromFile = lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (fromFile.Count == 0)
            {
                throw new InvalidOperationException($"{SecretFileSetting} is {path}, which holds no secret (one per line).");
            }
            secrets.AddRange(fromFile);
            sources.Add($"{SecretFileSetting} ({path})");
        }
        return new InternalSecrets(secrets, string.Join(" and ", sources));
    }

    /// <summary>True when <paramref name="presented"/> is one of the secrets; compares SHA-256 digests in constant time, so
    /// neither the length nor a prefix of a secret can be learned from timing.</summary>
    public bool Accepts(string? presented)
    {
        if (presented is null)
        {
            return false;
        }
        var hash = Hash(presented);
        var match = false;
        foreach (var expected in _hashes)
        {
            match |= CryptographicOperations.FixedTimeEquals(hash, expected);
        }
        return match;
    }

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));
}

/// <summary>
/// Internal-caller authentication of the workers: every gRPC call except health (which the kubelet probes) requires the
/// shared secret in the <see cref="Header"/> metadata header. Fails closed: a worker with no secret refuses to start
/// unless it listens only on loopback.
/// </summary>
public static class InternalCallAuth
{
    /// <summary>The metadata header that carries the secret (lower case, as gRPC metadata keys are).</summary>
    public const string Header = "x-kosmos2-internal";

    /// <summary>Requires the secret on every gRPC call but health (<see cref="InternalCallGate"/>); adds the startup check.</summary>
    public static WebApplicationBuilder AddInternalCallAuth(this WebApplicationBuilder builder, string serviceName)
    {
        var secrets = InternalSecrets.Load(builder.Configuration);
        builder.Services.AddSingleton(secrets);
        // First in the pipeline, before routing and gRPC: a call is refused on its headers, before its body is read.
        builder.Services.AddSingleton<IStartupFilter, InternalCallGateStartup>();
        builder.Services.AddHostedService(sp => new InternalCallAuthStartupReport(serviceName, secrets,
            builder.Configuration.GetSection(ServiceOptions.SectionName).Get<ServiceOptions>()?.Host ?? new ServiceOptions().Host,
            sp.GetRequiredService<ILogger<InternalCallAuthStartupReport>>()));
        return builder;
    }

    /// <summary>True for <c>localhost</c> and loopback addresses (127.0.0.0/8, ::1).</summary>
    public static bool IsLoopback(string host) =>
        string.Equals(host.Trim(), "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim().Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    private sealed class InternalCallGateStartup : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseMiddleware<InternalCallGate>();
            next(app);
        };
    }
}

/// <summary>
/// Refuses a gRPC call without the right secret with UNAUTHENTICATED, on its headers alone: a trailers-only response,
/// the body never read, so a stranger cannot make a worker buffer and parse a 20 MB message first (grpc-dotnet reads the
/// whole message before any interceptor runs). Health and anything that is not gRPC (the metrics port) pass; every call
/// passes when no secret is configured (which <see cref="InternalCallAuthStartupReport"/> allows only on loopback).
/// </summary>
internal sealed class InternalCallGate(RequestDelegate next, InternalSecrets secrets)
{
    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!secrets.IsSet
            || request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) != true
            || request.Path.StartsWithSegments("/grpc.health.v1.Health", StringComparison.Ordinal))
        {
            return next(context);
        }
        var presented = request.Headers[InternalCallAuth.Header];
        if (presented.Count == 1 && secrets.Accepts(presented.ToString()))
        {
            return next(context);
        }
        var message = presented.Count == 0
            ? $"This worker takes calls only from the gateway: send the internal secret in the '{InternalCallAuth.Header}' header " +
              $"(the gateway does when {InternalSecrets.SecretSetting} or {InternalSecrets.SecretFileSetting} is set, to the same secret as the workers')."
            : $"The internal secret in '{InternalCallAuth.Header}' is not this worker's: give the gateway and every worker the same " +
              $"{InternalSecrets.SecretSetting} or {InternalSecrets.SecretFileSetting}.";
        RpcErrors.WriteTrailersOnly(context.Response, StatusCode.Unauthenticated, message);
        return Task.CompletedTask;
    }
}

/// <summary>Says at startup whether internal calls are authenticated; refuses to start without a secret beyond loopback.</summary>
internal sealed partial class InternalCallAuthStartupReport(string serviceName, InternalSecrets secrets, string host,
    ILogger<InternalCallAuthStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (secrets.IsSet)
        {
            LogOn(logger, serviceName, secrets.Source);
            return Task.CompletedTask;
        }
        if (!InternalCallAuth.IsLoopback(host))
        {
            throw new InvalidOperationException(
                $"No internal secret is configured and the {serviceName} would listen on {host}, beyond this machine, taking calls from anyone " +
                $"who can reach it. Set {InternalSecrets.SecretSetting} (environment Internal__Secret) or {InternalSecrets.SecretFileSetting} " +
                $"(a mounted Secret) to the gateway's secret, or listen on 127.0.0.1 ({ServiceOptions.SectionName}:Host).");
        }
        LogOpen(logger, serviceName, host);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Internal call authentication is on: the {Service} requires the secret of {Source}.")]
    private static partial void LogOn(ILogger logger, string service, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message =
        "No internal secret is configured: the {Service} on {Host} (loopback) accepts calls from any local process. Set Internal:Secret " +
        "before exposing it beyond this machine.")]
    private static partial void LogOpen(ILogger logger, string service, string host);
}
