using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Kosmos2.Deploy.Tests;

/// <summary>Where the base manifests' in-cluster addresses and paths point on this machine.</summary>
/// <param name="GrpcPorts">Service name (as in the manifests' Services) to its local gRPC port.</param>
/// <param name="MetricsPorts">Service name to its local metrics port.</param>
/// <param name="RedisPort">The test's redis-server (sessions and cache: one server stands in for both).</param>
/// <param name="RedisPassword">Its password, standing in for the Secret kosmos2-redis.</param>
/// <param name="ModelDir">The checkpoint folder standing in for <see cref="ManifestTests.ModelPath"/>.</param>
/// <param name="ApiKeysFile">A keys file standing in for the mounted Secret.</param>
/// <param name="GatewayHttpPort">The gateway's local HTTP port (its JSON API and web page).</param>
/// <param name="InternalSecretFile">A secret file standing in for the mounted Secret kosmos2-internal.</param>
public sealed record LocalEndpoints(
    IReadOnlyDictionary<string, int> GrpcPorts,
    IReadOnlyDictionary<string, int> MetricsPorts,
    int RedisPort,
    string RedisPassword,
    string ModelDir,
    string ApiKeysFile,
    int GatewayHttpPort,
    string InternalSecretFile);

/// <summary>
/// Turns the environment a manifest gives a service's container into the one it gets on loopback: only what points
/// at the cluster is rewritten (bind host, ports, Redis endpoint, worker Services, the model mount, the keys and internal Secrets);
/// every other value is passed unchanged. A value the rewrite does not know but that looks like an address or a path
/// is reported as a problem, so a new setting of that kind cannot reach the service still pointing into the cluster
/// (or, worse, silently keep working here because it is ignored).
/// </summary>
public static partial class LoopbackEnvironment
{
    public static (Dictionary<string, string> Environment, List<string> Problems) Rewrite(
        string service, IReadOnlyDictionary<string, string> manifest, LocalEndpoints local)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (key, value) in manifest)
        {
            string? rewritten = key switch
            {
                "Service__Host" => "127.0.0.1",
                "Service__Port" => Port(local.GrpcPorts[service]),
                "Service__MetricsPort" => Port(local.MetricsPorts[service]),
                "Service__HttpPort" when service == "gateway" => Port(local.GatewayHttpPort),
                "Redis__Sessions" or "Redis__Cache" => RewriteRedis(key, value, local.RedisPort, problems),
                "Redis__Password" when value == RenderedManifest.SecretReference("kosmos2-redis", "password") => local.RedisPassword,
                "Auth__ApiKeysFile" => local.ApiKeysFile,
                "Internal__SecretFile" => local.InternalSecretFile,
                // Baked into the gateway image (deploy/docker/gateway.Dockerfile); here the checkpoint's own tokenizer.
                "Gateway__TokenizerDir" => local.ModelDir,
                // Empty = no export (the base default); a collector address would only be tried, never required.
                "OTEL_EXPORTER_OTLP_ENDPOINT" => value,
                _ => null,
            };
            if (rewritten is null && value == ManifestTests.ModelPath)
            {
                rewritten = local.ModelDir; // Vision__ModelDir, Decoder__ModelDir, Gateway__TokenizerDir
            }
            if (rewritten is null && value.StartsWith("dns:", StringComparison.OrdinalIgnoreCase))
            {
                rewritten = RewriteDnsTarget(key, value, local, problems);
            }
            if (rewritten is null && LooksLikeAddressOrPath(key, value))
            {
                problems.Add($"{service}: {key}={value} looks like an address or a path, and the loopback rewrite does not know it");
            }
            environment[key] = rewritten ?? value;
        }
        return (environment, problems);
    }

    /// <summary>True for a non-empty value that names a place: an absolute path, a URI, host:port, an IP literal, or a
    /// setting whose name says it holds one.</summary>
    public static bool LooksLikeAddressOrPath(string key, string value)
    {
        value = value.Trim();
        return value.Length > 0
            && (value.StartsWith('/') || value.StartsWith('~') || value.Contains("://", StringComparison.Ordinal)
                || HostPort().IsMatch(value) || IsIpLiteral(value) || AddressLikeName().IsMatch(key));
    }

    /// <summary>StackExchange.Redis configuration: comma-separated endpoints (host:port) and options (name=value). The one
    /// endpoint moves to the local server; every option (abortConnect=false, ssl, ...) is kept as the manifest gives it.</summary>
    private static string RewriteRedis(string key, string value, int port, List<string> problems)
    {
        var parts = value.Split(',', StringSplitOptions.TrimEntries);
        var endpoints = parts.Count(p => p.Length > 0 && !p.Contains('=', StringComparison.Ordinal));
        if (endpoints != 1)
        {
            problems.Add($"{key}={value} has {endpoints} endpoints; the loopback rewrite expects one");
        }
        return string.Join(',', parts.Select(p => p.Length > 0 && !p.Contains('=', StringComparison.Ordinal) ? $"127.0.0.1:{Port(port)}" : p));
    }

    /// <summary><c>dns:///SERVICE:PORT</c> of one of our Services at its cluster port becomes <c>dns:///localhost:LOCAL</c>:
    /// still the gateway's DNS resolver, now resolving this machine.</summary>
    private static string? RewriteDnsTarget(string key, string value, LocalEndpoints local, List<string> problems)
    {
        var match = DnsTarget().Match(value);
        if (match.Success && local.GrpcPorts.TryGetValue(match.Groups["host"].Value, out var port)
            && ManifestTests.GrpcPorts.TryGetValue(match.Groups["host"].Value, out var clusterPort)
            && match.Groups["port"].Value == Port(clusterPort))
        {
            return $"dns:///localhost:{Port(port)}";
        }
        problems.Add($"{key}={value} is not dns:///SERVICE:PORT of one of {string.Join(", ", ManifestTests.GrpcPorts.Select(p => $"{p.Key}:{p.Value}"))}");
        return value;
    }

    /// <summary>A dotted IPv4 or an IPv6 literal. IPAddress.TryParse alone also accepts plain numbers ("4" = 0.0.0.4),
    /// which would flag every count and timeout.</summary>
    private static bool IsIpLiteral(string value) =>
        (value.Count(c => c == '.') == 3 || value.Contains(':', StringComparison.Ordinal)) && IPAddress.TryParse(value, out _);

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^dns:///(?<host>[a-z0-9-]+):(?<port>\d+)$")]
    private static partial Regex DnsTarget();

    [GeneratedRegex(@"(^|[\s,;=@\[])[A-Za-z0-9][A-Za-z0-9.\-]*:\d{1,5}($|[\s,;/\]])")]
    private static partial Regex HostPort();

    [GeneratedRegex(@"(Host|Hosts|Port|Dir|Directory|Folder|File|Path|Endpoint|Url|Uri|Address|Addresses|Workers|Configuration|ConnectionString|Server|Servers)$", RegexOptions.IgnoreCase)]
    private static partial Regex AddressLikeName();
}
