namespace Kosmos2.Deploy.Tests;

/// <summary>Who may connect to what, evaluated from the rendered NetworkPolicies against the pods of the manifest and a
/// few outsiders: only the gateway reaches the workers' gRPC ports and the session Redis, only the vision worker the cache Redis, Prometheus
/// (from any namespace) reaches the metrics ports.</summary>
public sealed class NetworkPolicyTests
{
    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void Only_the_gateway_reaches_the_workers_grpc_ports(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var worker in ManifestTests.Workers)
        {
            var destination = manifest.Workload(worker);
            var admitted = Candidates(manifest).Where(p => KubeSemantics.Admits(manifest, destination, ManifestTests.GrpcPorts[worker], p))
                .Select(p => p.Description).ToList();
            Assert.True(admitted is ["pod of gateway"],
                $"{target}: {worker}:{ManifestTests.GrpcPorts[worker]} admits [{string.Join(", ", admitted)}], expected only the gateway");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Only_the_gateway_reaches_the_session_redis_and_only_the_vision_worker_the_cache_redis(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var (redisName, client) in new[] { ("redis-sessions", "gateway"), ("redis-cache", "vision-worker") })
        {
            var redis = manifest.Workloads.SingleOrDefault(w => w.Name == redisName);
            if (redis is null)
            {
                continue; // external Redis: nothing of ours to protect (Redis_sessions_keep_data_and_the_cache_evicts checks this is intended)
            }
            var admitted = Candidates(manifest).Where(p => KubeSemantics.Admits(manifest, redis, 6379, p)).Select(p => p.Description).ToList();
            Assert.True(admitted.SequenceEqual([$"pod of {client}"]),
                $"{target}: {redisName}:6379 admits [{string.Join(", ", admitted)}], expected only the {client}");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Prometheus_from_any_namespace_reaches_the_metrics_ports_and_strangers_do_not(string target)
    {
        var manifest = RenderedManifest.For(target);
        var prometheus = new[]
        {
            PeerPod.Of("Prometheus pod in namespace observability", "observability", "prometheus"),
            PeerPod.Of("any pod in namespace monitoring", "monitoring", "grafana-agent"),
        };
        foreach (var service in ManifestTests.GrpcPorts.Keys)
        {
            var destination = manifest.Workload(service);
            Assert.All(prometheus, p => Assert.True(KubeSemantics.Admits(manifest, destination, ManifestTests.MetricsPort, p), $"{target}: {p} cannot scrape {service}"));
            Assert.All(Strangers(destination.Namespace), p => Assert.False(KubeSemantics.Admits(manifest, destination, ManifestTests.MetricsPort, p), $"{target}: {p} reaches {service}'s metrics"));
        }
    }

    /// <summary>The pods of the manifest plus outsiders: another app in the namespace, and pods elsewhere that carry
    /// our own labels (a podSelector without a namespaceSelector must not admit them).</summary>
    private static IEnumerable<PeerPod> Candidates(RenderedManifest manifest) =>
        manifest.Workloads.Select(w => new PeerPod($"pod of {w.Name}", w.Namespace, w.PodLabels))
            .Concat(Strangers(manifest.Workload("gateway").Namespace));

    private static PeerPod[] Strangers(string ns) =>
    [
        PeerPod.Of($"another app's pod in {ns}", ns, "intruder"),
        PeerPod.Of("a pod in namespace elsewhere", "elsewhere", "intruder"),
        PeerPod.Of("a pod labelled gateway in namespace elsewhere", "elsewhere", "gateway"),
    ];
}
