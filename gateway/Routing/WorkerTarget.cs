using Grpc.Net.Client.Balancer;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// Where a worker pool's addresses come from, parsed from <c>Gateway:VisionWorkers</c> / <c>Gateway:DecoderWorkers</c>:
/// <c>dns:///host:port</c> (a Kubernetes headless Service: every pod IP becomes a subchannel, re-resolved
/// periodically) or <c>http://a:1,http://b:2</c> (a fixed list).
/// </summary>
public sealed record WorkerTarget
{
    private WorkerTarget(Uri channelAddress, IReadOnlyList<BalancerAddress>? staticAddresses, bool secure)
    {
        ChannelAddress = channelAddress;
        StaticAddresses = staticAddresses;
        Secure = secure;
    }

    /// <summary>The address the channel is created with (<c>dns:///…</c> or <c>static:///pool</c>).</summary>
    public Uri ChannelAddress { get; }

    /// <summary>The fixed addresses, or null for a DNS target.</summary>
    public IReadOnlyList<BalancerAddress>? StaticAddresses { get; }

    /// <summary>True for <c>https://</c> workers (TLS); DNS targets and <c>http://</c> lists are plain HTTP/2.</summary>
    public bool Secure { get; }

    /// <summary>Parses a pool setting; null when it is empty (no workers configured).</summary>
    /// <exception cref="FormatException">The setting is neither form; the message names <paramref name="setting"/>.</exception>
    public static WorkerTarget? Parse(string? value, string pool, string setting)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        value = value.Trim();
        if (value.StartsWith("dns:", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var dns) || dns.AbsolutePath.Trim('/').Length == 0)
            {
                throw new FormatException($"{setting} = '{value}' is not a DNS target: use dns:///host:port.");
            }
            return new WorkerTarget(dns, null, secure: false);
        }
        var addresses = new List<BalancerAddress>();
        bool? secure = null;
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.IsDefaultPort && !part.Contains(':', StringComparison.Ordinal))
            {
                throw new FormatException($"{setting} has '{part}': give dns:///host:port or a comma-separated list of http://host:port.");
            }
            var isSecure = uri.Scheme == Uri.UriSchemeHttps;
            if (secure is { } s && s != isSecure)
            {
                throw new FormatException($"{setting} mixes http:// and https:// workers; one pool uses one scheme.");
            }
            secure = isSecure;
            addresses.Add(new BalancerAddress(uri.Host, uri.Port));
        }
        if (addresses.Count == 0)
        {
            return null;
        }
        return new WorkerTarget(new Uri($"static:///{pool}"), addresses, secure ?? false);
    }

    /// <summary>Registers the resolver of this target in a channel's service provider.</summary>
    internal void AddResolver(IServiceCollection services, TimeSpan dnsRefresh)
    {
        if (StaticAddresses is { } addresses)
        {
            services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => addresses));
        }
        else
        {
            services.AddSingleton<ResolverFactory>(new DnsResolverFactory(dnsRefresh));
        }
    }
}
