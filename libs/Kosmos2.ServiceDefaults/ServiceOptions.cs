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

    /// <summary>How long shutdown waits for in-flight streams to finish.</summary>
    public int ShutdownTimeoutSeconds { get; set; } = 30;
}
