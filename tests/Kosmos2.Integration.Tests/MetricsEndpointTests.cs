using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>Each service exposes a Prometheus scrape endpoint on its metrics port (HTTP/1.1).</summary>
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Gateway_serves_prometheus_metrics_including_grpc_server_requests()
    {
        var metricsPort = FreePort.Next();
        await using var gateway = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"),
            new Dictionary<string, string> { ["Service__MetricsPort"] = metricsPort.ToString() });
        await gateway.WaitHealthyAsync(TimeSpan.FromSeconds(60));
        await new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel).GetInfoAsync(new GetInfoRequest());

        using var http = new HttpClient();
        string text = "";
        await Poll.UntilAsync(async () =>
        {
            text = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
            return text.Contains("http_server_request_duration_seconds", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), "the request metric to appear on /metrics");
        Assert.Contains("kosmos2.v1.Kosmos2/GetInfo", text);
    }
}
