using System.Globalization;
using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>A would-be client of a port: a pod with labels in a namespace with labels.</summary>
public sealed record PeerPod(string Description, string Namespace, IReadOnlyDictionary<string, string> Labels)
{
    /// <summary>Every namespace carries its name as a label (Kubernetes sets it since 1.21).</summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels { get; } =
        new Dictionary<string, string>(StringComparer.Ordinal) { ["kubernetes.io/metadata.name"] = Namespace };

    public static PeerPod Of(string description, string ns, string appName) =>
        new(description, ns, new Dictionary<string, string>(StringComparer.Ordinal) { ["app.kubernetes.io/name"] = appName });

    public override string ToString() => Description;
}

/// <summary>The few pieces of Kubernetes semantics the tests need: label selectors, quantities, and which peers a
/// set of NetworkPolicies lets reach a pod's port.</summary>
public static class KubeSemantics
{
    /// <summary>matchLabels + matchExpressions; an empty selector matches everything.</summary>
    public static bool Matches(JsonNode? selector, IReadOnlyDictionary<string, string> labels)
    {
        if (selector is null)
        {
            return true;
        }
        foreach (var (key, value) in selector["matchLabels"]?.AsObject() ?? [])
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value?.ToString())
            {
                return false;
            }
        }
        foreach (var expression in selector["matchExpressions"]?.AsArray().OfType<JsonObject>() ?? [])
        {
            var key = expression["key"]!.ToString();
            var values = expression["values"]?.AsArray().Select(v => v!.ToString()).ToHashSet(StringComparer.Ordinal) ?? [];
            var has = labels.TryGetValue(key, out var actual);
            var ok = expression["operator"]!.ToString() switch
            {
                "In" => has && values.Contains(actual!),
                "NotIn" => !has || !values.Contains(actual!),
                "Exists" => has,
                "DoesNotExist" => !has,
                var op => throw new InvalidOperationException($"Unknown selector operator {op}."),
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A resource quantity ("250m", "2", "3Gi", "2560Mi", "1e3") as a number of base units.</summary>
    public static decimal Quantity(string text)
    {
        (string Suffix, decimal Factor)[] suffixes =
        [
            ("Ki", 1024m), ("Mi", 1024m * 1024), ("Gi", 1024m * 1024 * 1024), ("Ti", 1024m * 1024 * 1024 * 1024),
            ("m", 0.001m), ("k", 1e3m), ("M", 1e6m), ("G", 1e9m), ("T", 1e12m),
        ];
        foreach (var (suffix, factor) in suffixes)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                return decimal.Parse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture) * factor;
            }
        }
        return decimal.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>Whether <paramref name="source"/> may open a TCP connection to <paramref name="port"/> of the pods of
    /// <paramref name="destination"/> under the manifest's NetworkPolicies (ingress side only).</summary>
    public static bool Admits(RenderedManifest manifest, Workload destination, int port, PeerPod source)
    {
        var policies = manifest.OfKind("NetworkPolicy")
            .Where(p => RenderedManifest.NamespaceOf(p) == destination.Namespace)
            .Where(p => Matches(p["spec"]?["podSelector"], destination.PodLabels))
            .Where(p => p["spec"]?["policyTypes"] is not JsonArray types || types.Any(t => t?.ToString() == "Ingress"))
            .ToList();
        if (policies.Count == 0)
        {
            return true; // not isolated: everything gets in
        }
        foreach (var rule in policies.SelectMany(p => p["spec"]?["ingress"]?.AsArray().OfType<JsonObject>() ?? []))
        {
            if (!PortMatches(rule["ports"], port, destination))
            {
                continue;
            }
            if (rule["from"] is not JsonArray from || from.Count == 0)
            {
                return true;
            }
            if (from.OfType<JsonObject>().Any(peer => PeerMatches(peer, destination.Namespace, source)))
            {
                return true;
            }
        }
        return false;
    }

    private static bool PortMatches(JsonNode? ports, int port, Workload destination)
    {
        if (ports is not JsonArray list || list.Count == 0)
        {
            return true;
        }
        foreach (var entry in list.OfType<JsonObject>())
        {
            if ((entry["protocol"]?.ToString() ?? "TCP") != "TCP")
            {
                continue;
            }
            var value = entry["port"]?.ToString();
            if (value is null)
            {
                return true;
            }
            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                var end = entry["endPort"] is { } endPort ? int.Parse(endPort.ToString(), CultureInfo.InvariantCulture) : number;
                if (port >= number && port <= end)
                {
                    return true;
                }
            }
            else if (destination.Containers.Any(c => c.Port(value) == port))
            {
                return true;
            }
        }
        return false;
    }

    private static bool PeerMatches(JsonObject peer, string policyNamespace, PeerPod source)
    {
        if (peer["ipBlock"] is not null)
        {
            return true; // an address range may contain any pod: count it as admitting
        }
        var namespaceOk = peer["namespaceSelector"] is { } namespaceSelector
            ? Matches(namespaceSelector, source.NamespaceLabels)
            : source.Namespace == policyNamespace;
        return namespaceOk && Matches(peer["podSelector"], source.Labels);
    }
}
