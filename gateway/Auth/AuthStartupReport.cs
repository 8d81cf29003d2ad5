using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Auth;

/// <summary>
/// Says at startup how calls are authenticated; loudly when they are not. Fails closed: a gateway with no key that
/// listens beyond loopback refuses to start unless <see cref="AuthOptions.AllowAnonymous"/> says so.
/// </summary>
internal sealed partial class AuthStartupReport(ApiKeyStore keys, IOptions<AuthOptions> auth, IConfiguration configuration,
    ILogger<AuthStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < auth.Value.ApiKeys.Count; i++)
        {
            if (auth.Value.ApiKeys[i].Key is { Length: > 0 and < AuthOptions.MinKeyLength } shortKey)
            {
                throw new InvalidOperationException(
                    $"Auth:ApiKeys:{i}:Key has {shortKey.Length} characters; API keys need at least {AuthOptions.MinKeyLength} " +
                    "(e.g. `openssl rand -hex 16`), as a short key can be guessed.");
            }
        }
        if (!keys.IsOpen)
        {
            LogKeys(logger, keys.KeyCount);
            return Task.CompletedTask;
        }
        var host = configuration.GetSection(ServiceOptions.SectionName).Get<ServiceOptions>()?.Host ?? new ServiceOptions().Host;
        if (!InternalCallAuth.IsLoopback(host) && !auth.Value.AllowAnonymous)
        {
            throw new InvalidOperationException(
                $"No API key is configured and the gateway would listen on {host}, beyond this machine. Set Auth:ApiKeys:0:Key " +
                "and Auth:ApiKeys:0:Tenant (or Auth:ApiKeysFile), listen on 127.0.0.1 (Service:Host), or set " +
                "Auth:AllowAnonymous=true to run open on purpose.");
        }
        LogOpen(logger, Tenant.LocalId, host);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message =
        "NO API KEY IS CONFIGURED: the gateway on {Host} accepts every call, as tenant '{Tenant}'. Set Auth:ApiKeys:0:Key and " +
        "Auth:ApiKeys:0:Tenant (or Auth:ApiKeysFile) before exposing it beyond this machine.")]
    private static partial void LogOpen(ILogger logger, string tenant, string host);

    [LoggerMessage(Level = LogLevel.Information, Message = "API key authentication is on: {Count} keys accepted now.")]
    private static partial void LogKeys(ILogger logger, int count);
}
