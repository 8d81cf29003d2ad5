namespace Kosmos2.Gateway.Auth;

/// <summary>Says at startup how calls are authenticated; loudly when they are not.</summary>
internal sealed partial class AuthStartupReport(ApiKeyStore keys, ILogger<AuthStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (keys.IsOpen)
        {
            LogOpen(logger, Tenant.LocalId);
        }
        else
        {
            LogKeys(logger, keys.KeyCount);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message =
        "NO API KEY IS CONFIGURED: the gateway accepts every call, as tenant '{Tenant}'. Set Auth:ApiKeys:0:Key and " +
        "Auth:ApiKeys:0:Tenant (or Auth:ApiKeysFile) before exposing it beyond this machine.")]
    private static partial void LogOpen(ILogger logger, string tenant);

    [LoggerMessage(Level = LogLevel.Information, Message = "API key authentication is on: {Count} keys accepted now.")]
    private static partial void LogKeys(ILogger logger, int count);
}
