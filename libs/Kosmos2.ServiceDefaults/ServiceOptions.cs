namespace Kosmos2.ServiceDefaults;

/// <summary>Where and how a service listens; bound from the <c>Service</c> configuration section
/// (environment: <c>Service__Port</c>, <c>Service__MetricsPort</c>, …).</summary>
public sealed class ServiceOptions
{
    public const string SectionName = "Service";

    /// <summary>Address to bind; 0.0.0.0 in containers, 127.0.0.1 for a local cluster.</summary>
    public string Host { get; set; } = "0.0.0.0";

    /// <summary>gRPC port (plain HTTP/2, prior knowledge).</summary>
    public int Port { get; set; } = 5000;

    /// <summary>
    /// HTTP/1.1 port of a service's HTTP face (the gateway's JSON API and web page); 0 disables it. The same JSON
    /// routes answer HTTP/2 (prior knowledge) on <see cref="Port"/>, which stays HTTP/2 only.
    /// </summary>
    public int HttpPort { get; set; }

    /// <summary>HTTP/1.1 port of the Prometheus scrape endpoint <c>/metrics</c>; 0 disables it.</summary>
    public int MetricsPort { get; set; }

    /// <summary>
    /// Serves gRPC reflection (what grpcurl lists services with). Off by default: it tells anyone who can connect
    /// every method and message of the service; turn it on for a local cluster or debugging.
    /// </summary>
    public bool EnableReflection { get; set; }

    /// <summary>Most open connections (Kestrel's MaxConcurrentConnections); each buffers at most its 1 MB HTTP/2 window of unread data.</summary>
    public long MaxConnections { get; set; } = 1024;

    /// <summary>Most concurrent streams on one HTTP/2 connection (a gateway opens several to a busy worker).</summary>
    public int MaxStreamsPerConnection { get; set; } = 100;

    /// <summary>Largest total of one request's headers, in bytes (an API key and trace headers need well under 1 KB).</summary>
    public int MaxRequestHeaderBytes { get; set; } = 32 * 1024;

    /// <summary>
    /// Seconds of silence on a connection before an HTTP/2 ping; a peer that does not answer within
    /// <see cref="KeepAlivePingTimeoutSeconds"/> is closed, and its calls with it (a vanished client frees its streams).
    /// </summary>
    public int KeepAlivePingSeconds { get; set; } = 30;

    /// <summary>Seconds a keep-alive ping may go unanswered before the connection is closed.</summary>
    public int KeepAlivePingTimeoutSeconds { get; set; } = 20;

    /// <summary>How long shutdown waits for in-flight streams to finish.</summary>
    public int ShutdownTimeoutSeconds { get; set; } = 30;
}
