using System.Diagnostics.Metrics;

namespace Kosmos2.Gateway.Generation;

/// <summary>The gateway's metrics, with OpenTelemetry GenAI names where they exist.</summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "Kosmos2.Gateway";

    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _requestDuration;
    private readonly Histogram<double> _visionDuration;
    private readonly Counter<long> _imageCache;
    private readonly Counter<long> _outcomes;
    private readonly Counter<long> _tokens;
    private readonly Counter<long> _tenantRequests;
    private readonly Counter<long> _tenantTokens;
    private readonly Counter<long> _tenantRefusals;

    /// <param name="meters">The host's meter factory: each gateway's instruments are its own (tests tell hosts apart by it).</param>
    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _timeToFirstToken = meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s", "Time from a request's arrival at the gateway to its first generated token.");
        _requestDuration = meter.CreateHistogram<double>("gen_ai.server.request.duration", "s", "Time from a request's arrival to its final message.");
        _visionDuration = meter.CreateHistogram<double>("kosmos2.gateway.vision.duration", "s", "Time to obtain an image's embeddings.");
        _imageCache = meter.CreateCounter<long>("kosmos2.gateway.image_cache", description: "Images by embedding-cache outcome (hit or miss).");
        _outcomes = meter.CreateCounter<long>("kosmos2.gateway.requests", description: "Finished requests by method and gRPC status.");
        _tokens = meter.CreateCounter<long>("gen_ai.client.token.usage", "{token}", "Tokens by type (input, output).");
        _tenantRequests = meter.CreateCounter<long>("kosmos2.gateway.tenant.requests", "{request}", "Calls admitted, by tenant.");
        _tenantTokens = meter.CreateCounter<long>("kosmos2.gateway.tenant.tokens", "{token}", "Tokens used, by tenant and type (input, output).");
        _tenantRefusals = meter.CreateCounter<long>("kosmos2.gateway.tenant.refusals", "{request}",
            "Calls refused by a tenant's quota, by tenant and reason (requests_per_second, tokens_per_minute, in_flight).");
    }

    /// <summary>A call admitted for <paramref name="tenant"/>.</summary>
    public void RecordTenantRequest(string tenant) => _tenantRequests.Add(1, new KeyValuePair<string, object?>("tenant", tenant));

    /// <summary>Tokens one of <paramref name="tenant"/>'s generations used.</summary>
    public void RecordTenantTokens(string tenant, int inputTokens, int outputTokens)
    {
        _tenantTokens.Add(inputTokens, new KeyValuePair<string, object?>("tenant", tenant), new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
        _tenantTokens.Add(outputTokens, new KeyValuePair<string, object?>("tenant", tenant), new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
    }

    /// <summary>A call of <paramref name="tenant"/> refused by its quota.</summary>
    public void RecordTenantRefusal(string tenant, string reason) =>
        _tenantRefusals.Add(1, new KeyValuePair<string, object?>("tenant", tenant), new KeyValuePair<string, object?>("reason", reason));

    public void RecordImage(bool cacheHit, double seconds)
    {
        _imageCache.Add(1, new KeyValuePair<string, object?>("outcome", cacheHit ? "hit" : "miss"));
        _visionDuration.Record(seconds);
    }

    /// <summary>A finished call of the public service, by its real gRPC status (see <see cref="RequestOutcomeInterceptor"/>).</summary>
    public void RecordRequest(string method, string status, double seconds)
    {
        _outcomes.Add(1, new KeyValuePair<string, object?>("method", method), new KeyValuePair<string, object?>("status", status));
        _requestDuration.Record(seconds, new KeyValuePair<string, object?>("method", method), new KeyValuePair<string, object?>("status", status));
    }

    /// <summary>A generation that reached its result: time to its first token and its tokens.</summary>
    public void RecordGeneration(double timeToFirstTokenSeconds, int inputTokens, int outputTokens)
    {
        _timeToFirstToken.Record(timeToFirstTokenSeconds);
        _tokens.Add(inputTokens, new KeyValuePair<string, object?>("gen_ai.token.type", "input"));
        _tokens.Add(outputTokens, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
    }
}
