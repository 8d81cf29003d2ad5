using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kosmos2.Deploy.Tests;

/// <summary>The monitoring component: Prometheus Operator PodMonitors for every service, and prometheus-adapter rules
/// that serve exactly the Pods metrics the HPAs ask for, one value per pod.</summary>
public sealed class MonitoringTests
{
    private const string Target = "base+components/monitoring";

    private static string AdapterValuesPath => Path.Combine(RenderedManifest.K8sDir, "components", "monitoring", "prometheus-adapter-values.yaml");

    [Fact]
    public void The_monitoring_component_renders_valid_pod_monitors_that_scrape_every_services_metrics_port()
    {
        var manifest = RenderedManifest.For(Target);
        Assert.True(manifest.SchemaErrors.Count == 0, string.Join('\n', manifest.SchemaErrors));
        foreach (var service in ManifestTests.GrpcPorts.Keys)
        {
            var workload = manifest.Workload(service);
            var monitor = Assert.Single(manifest.OfKind("PodMonitor"), m => KubeSemantics.Matches(m["spec"]!["selector"], workload.PodLabels));
            Assert.Equal(workload.Namespace, RenderedManifest.NamespaceOf(monitor));
            var endpoint = Assert.Single(monitor["spec"]!["podMetricsEndpoints"]!.AsArray().OfType<JsonObject>());
            Assert.Equal(ManifestTests.MetricsPort, workload.MainContainer.Port(endpoint["port"]!.ToString()));
            Assert.Equal("/metrics", endpoint["path"]?.ToString() ?? "/metrics");
        }
    }

    [Fact]
    public void The_adapter_rules_serve_every_hpa_metric_summed_per_pod()
    {
        var hpaMetrics = RenderedManifest.For("base").OfKind("HorizontalPodAutoscaler")
            .SelectMany(h => h["spec"]!["metrics"]!.AsArray().Select(m => m!["pods"]!["metric"]!["name"]!.ToString())).Distinct().ToList();
        Assert.NotEmpty(hpaMetrics);

        var convert = ExternalTools.Run(ExternalTools.Node,
            ["--input-type=module", "-e", "import {parse} from 'yaml'; import {readFileSync} from 'node:fs'; process.stdout.write(JSON.stringify(parse(readFileSync(process.argv[1], 'utf8'))))", AdapterValuesPath],
            ExternalTools.ToolsDir, TimeSpan.FromMinutes(1));
        Assert.True(convert.ExitCode == 0, convert.StdErr);
        var rules = JsonNode.Parse(convert.StdOut)!["rules"]!["custom"]!.AsArray().OfType<JsonObject>().ToList();
        foreach (var metric in hpaMetrics)
        {
            var rule = Assert.Single(rules, r => SeriesNames(r["seriesQuery"]!.ToString()).IsMatch(metric));
            // One value per pod: the adapter substitutes the pod (and namespace) labels for <<.GroupBy>>.
            Assert.Contains("sum by (<<.GroupBy>>)", rule["metricsQuery"]!.ToString(), StringComparison.Ordinal);
            Assert.Contains("<<.LabelMatchers>>", rule["metricsQuery"]!.ToString(), StringComparison.Ordinal);
            var overrides = rule["resources"]!["overrides"]!;
            Assert.Equal("pod", overrides["pod"]!["resource"]!.ToString());
            Assert.Equal("namespace", overrides["namespace"]!["resource"]!.ToString());
        }
    }

    /// <summary>The <c>__name__=~"..."</c> matcher of a series query as an anchored regex (PromQL anchors it).</summary>
    private static Regex SeriesNames(string seriesQuery)
    {
        var match = Regex.Match(seriesQuery, "__name__=~\"([^\"]+)\"");
        Assert.True(match.Success, $"seriesQuery {seriesQuery} has no __name__=~ matcher");
        return new Regex($"^(?:{match.Groups[1].Value})$", RegexOptions.None, TimeSpan.FromSeconds(1));
    }
}
