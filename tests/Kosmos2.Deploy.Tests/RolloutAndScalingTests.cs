using System.Globalization;
using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>Rollouts that finish on GPUs and cold nodes, tiers that survive a drain, a gateway spread over failure
/// domains, and resources sized from what the services are configured to do.</summary>
public sealed class RolloutAndScalingTests
{
    /// <summary>Concurrent maximum-size uploads one gateway pod must hold within its memory limit.</summary>
    private const int ConcurrentMaxUploads = 16;

    /// <summary>Copies of one uploaded image the gateway holds at its peak: the received message, the image bytes, the
    /// Encode request to the vision worker and its retry buffer.</summary>
    private const int CopiesPerUpload = 4;

    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void Each_worker_tier_keeps_at_least_two_pods_so_a_drain_or_a_gpu_rollout_never_empties_it(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var worker in ManifestTests.Workers)
        {
            var hpa = Assert.Single(manifest.OfKind("HorizontalPodAutoscaler"), h => h["spec"]!["scaleTargetRef"]!["name"]!.ToString() == worker);
            var min = hpa["spec"]!["minReplicas"]?.GetValue<int>() ?? 1;
            Assert.True(min >= 2, $"{target}: {worker} minReplicas {min} < 2");
            // maxUnavailable 1 on the GPU overlay (no spare GPU needed) leaves min - 1 pods serving during a rollout.
            var unavailable = manifest.Workload(worker).Object["spec"]!["strategy"]?["rollingUpdate"]?["maxUnavailable"]?.ToString() ?? "25%";
            Assert.True(int.TryParse(unavailable, CultureInfo.InvariantCulture, out var n) && n < min, $"{target}: {worker} maxUnavailable {unavailable} with minReplicas {min}");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Rollouts_are_not_declared_failed_while_pods_are_still_loading(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var deployment in manifest.Workloads.Where(w => w.Kind == "Deployment"))
        {
            var deadline = deployment.Object["spec"]!["progressDeadlineSeconds"]?.GetValue<int>() ?? 600;
            var startup = ManifestTests.StartupAllowanceSeconds(deployment.MainContainer);
            Assert.True(deadline >= 1800 && deadline > startup,
                $"{target}: {deployment.Name} progressDeadlineSeconds {deadline} (startup allowance {startup} s); needs >= 1800 and more than the startup allowance");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Gateways_never_share_a_node_and_prefer_different_zones(string target)
    {
        var gateway = RenderedManifest.For(target).Workload("gateway");
        var constraints = gateway.PodSpec["topologySpreadConstraints"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
        JsonObject? On(string key) => constraints.SingleOrDefault(c => c["topologyKey"]?.ToString() == key
            && KubeSemantics.Matches(c["labelSelector"], gateway.PodLabels));
        Assert.Equal("DoNotSchedule", On("kubernetes.io/hostname")?["whenUnsatisfiable"]?.ToString());
        Assert.NotNull(On("topology.kubernetes.io/zone"));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_decoder_is_guaranteed_the_cpus_its_libtorch_threads_use(string target)
    {
        var manifest = RenderedManifest.For(target);
        var decoder = manifest.Workload("decoder-worker");
        // Guaranteed QoS: every container, init containers included, has requests equal to limits for cpu and memory.
        foreach (var container in decoder.Containers)
        {
            foreach (var resource in new[] { "cpu", "memory" })
            {
                var request = container.Node["resources"]?["requests"]?[resource]?.ToString();
                var limit = container.Node["resources"]?["limits"]?[resource]?.ToString();
                Assert.True(request is not null && limit is not null && KubeSemantics.Quantity(request) == KubeSemantics.Quantity(limit),
                    $"{target}: decoder-worker/{container.Name} {resource} request {request} != limit {limit} (not Guaranteed)");
            }
        }
        var cpus = KubeSemantics.Quantity(decoder.MainContainer.Node["resources"]!["requests"]!["cpu"]!.ToString());
        Assert.True(cpus == decimal.Truncate(cpus), $"{target}: the decoder's cpu request {cpus} is not whole CPUs");
        var threads = manifest.Environment(decoder.MainContainer).GetValueOrDefault("Decoder__Threads");
        Assert.Equal(cpus.ToString(CultureInfo.InvariantCulture), threads);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_gateway_memory_limit_holds_concurrent_maximum_size_uploads(string target)
    {
        var manifest = RenderedManifest.For(target);
        var gateway = manifest.Workload("gateway").MainContainer;
        var maxImageBytes = long.Parse(manifest.Environment(gateway)["Gateway__MaxImageBytes"], CultureInfo.InvariantCulture);
        const long steadyState = 256L * 1024 * 1024;
        var needed = steadyState + ((long)ConcurrentMaxUploads * CopiesPerUpload * maxImageBytes);
        var limit = KubeSemantics.Quantity(gateway.Node["resources"]!["limits"]!["memory"]!.ToString());
        Assert.True(limit >= needed,
            $"{target}: gateway memory limit {limit} B < {steadyState} B + {ConcurrentMaxUploads} uploads x {CopiesPerUpload} x {maxImageBytes} B");
    }
}
