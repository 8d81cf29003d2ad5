namespace Kosmos2.Gateway.Sessions;

/// <summary>Creates the session store at startup (connecting to Redis early) and says which one is in use.</summary>
internal sealed partial class SessionStoreStartupReport(ISessionStore store, ILogger<SessionStoreStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (store is InMemorySessionStore)
        {
            LogInMemory(logger);
        }
        else
        {
            LogStore(logger, store.GetType().Name);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message =
        "Redis is not configured (Redis:Sessions): chat sessions are kept in this process, lost on restart and " +
        "not shared between gateway replicas. Fine for local development only.")]
    private static partial void LogInMemory(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Chat sessions are stored by {Store}.")]
    private static partial void LogStore(ILogger logger, string store);
}
