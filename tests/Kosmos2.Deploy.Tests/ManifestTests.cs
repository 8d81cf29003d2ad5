using System.Globalization;
using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>Every kustomize target under deploy/k8s (base, each overlay, the base with each component), rendered with
/// kubectl and validated against the Kubernetes schemas, keeps the deployment's promises.</summary>
public sealed class ManifestTests
{
    /// <summary>The three services and their gRPC ports (Service__Port).</summary>
    public static readonly IReadOnlyDictionary<string, int> GrpcPorts = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["gateway"] = 50051,
        ["vision-worker"] = 50052,
        ["decoder-worker"] = 50053,
    };

    public static readonly string[] Workers = ["vision-worker", "decoder-worker"];

    public const int MetricsPort = 9464;

    /// <summary>The gateway's HTTP port (Service__HttpPort): the JSON API and the web page.</summary>
    public const int HttpPort = 8080;

    public const string ModelPath = "/models/kosmos-2-patch14-224";

    /// <summary>Every setting the services read from the environment (ASP.NET configuration, "__" = section).</summary>
    private static readonly HashSet<string> KnownEnvironment = new(StringComparer.Ordinal)
    {
        "Service__Port", "Service__MetricsPort", "Service__HttpPort", "Service__Host", "Service__ShutdownTimeoutSeconds",
        "Redis__Sessions", "Redis__Cache", "Redis__Password", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
        "Vision__ModelDir", "Vision__DType", "Vision__Device", "Vision__MaxBatch",
        "Decoder__ModelDir", "Decoder__DType", "Decoder__Device", "Decoder__MaxRunning", "Decoder__MaxWaiting",
        "Decoder__MaxSequenceTokens", "Decoder__Threads",
        "Gateway__TokenizerDir", "Gateway__VisionWorkers", "Gateway__DecoderWorkers", "Gateway__DnsRefreshSeconds",
        "Gateway__MaxImageBytes", "Auth__ApiKeysFile", "Internal__SecretFile",
    };

    public static TheoryData<string> Targets() => [.. RenderedManifest.DiscoverTargets()];

    [Fact]
    public void The_cpu_and_gpu_overlays_and_the_components_are_discovered()
    {
        var targets = RenderedManifest.DiscoverTargets().ToList();
        Assert.Contains("overlays/cpu", targets);
        Assert.Contains("overlays/gpu", targets);
        Assert.Contains("base+components/model-download", targets);
        Assert.Contains("base+components/external-redis", targets);
        Assert.Contains("base+components/monitoring", targets);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_object_passes_the_Kubernetes_schemas(string target)
    {
        var manifest = RenderedManifest.For(target);
        Assert.True(manifest.SchemaErrors.Count == 0, $"{target}:\n{string.Join('\n', manifest.SchemaErrors)}");
        foreach (var service in GrpcPorts.Keys)
        {
            Assert.Equal("Deployment", manifest.Workload(service).Kind);
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Worker_services_are_headless_and_the_gateway_service_is_not(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var (name, port) in GrpcPorts)
        {
            var spec = manifest.Get("Service", name)["spec"]!;
            var headless = spec["clusterIP"]?.ToString() == "None";
            Assert.True(Workers.Contains(name) == headless, $"{target}: Service {name} headless = {headless}");
            Assert.Equal("ClusterIP", spec["type"]?.ToString() ?? "ClusterIP");
            // Workers: the gRPC port alone. The gateway: gRPC and its HTTP face (JSON API and web page), nothing else.
            var ports = spec["ports"]!.AsArray().Select(p => (Name: p!["name"]?.ToString(), Port: p["port"]!.ToString())).ToList();
            (string?, string)[] expected = name == "gateway"
                ? [("grpc", port.ToString(CultureInfo.InvariantCulture)), ("http", HttpPort.ToString(CultureInfo.InvariantCulture))]
                : [("grpc", port.ToString(CultureInfo.InvariantCulture))];
            Assert.Equal(expected, ports);
            Assert.True(KubeSemantics.Matches(new JsonObject { ["matchLabels"] = spec["selector"]!.DeepClone() }, manifest.Workload(name).PodLabels),
                $"{target}: Service {name} does not select its pods");
            // A headless Service that published unready pods would send calls to a worker still loading weights.
            Assert.NotEqual("true", spec["publishNotReadyAddresses"]?.ToString(), StringComparer.OrdinalIgnoreCase);
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_service_container_has_grpc_startup_readiness_and_liveness_probes_on_its_grpc_port(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var (name, port) in GrpcPorts)
        {
            var container = manifest.Workload(name).MainContainer;
            Assert.Equal(port, container.Port("grpc"));
            foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
            {
                var grpc = container.Node[probe]?["grpc"];
                Assert.True(grpc is not null, $"{target}: {name} has no grpc {probe}");
                Assert.Equal(port.ToString(CultureInfo.InvariantCulture), grpc!["port"]?.ToString());
                Assert.Equal("", grpc["service"]?.ToString() ?? "");
            }
        }
        // The decoder loads ~6.7 GB on a cold node: the kubelet must wait at least 10 minutes before restarting it.
        Assert.True(StartupAllowanceSeconds(manifest.Workload("decoder-worker").MainContainer) >= 600, $"{target}: decoder startup allowance < 600 s");
        Assert.True(StartupAllowanceSeconds(manifest.Workload("vision-worker").MainContainer) >= 120, $"{target}: vision startup allowance < 120 s");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_container_runs_as_non_root_without_privilege_escalation(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var workload in manifest.Workloads)
        {
            var pod = workload.PodSpec["securityContext"];
            foreach (var container in workload.Containers)
            {
                var own = container.Node["securityContext"];
                var where = $"{target}: {workload.Name}/{container.Name}";
                Assert.True((own?["runAsNonRoot"] ?? pod?["runAsNonRoot"])?.GetValue<bool>() == true, $"{where}: runAsNonRoot is not true");
                var user = (own?["runAsUser"] ?? pod?["runAsUser"])?.GetValue<long>();
                Assert.True(user is > 0, $"{where}: runAsUser is {user?.ToString(CultureInfo.InvariantCulture) ?? "unset"}");
                Assert.True(own?["allowPrivilegeEscalation"]?.GetValue<bool>() == false, $"{where}: allowPrivilegeEscalation is not false");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_container_has_cpu_and_memory_requests_within_its_limits(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var workload in manifest.Workloads)
        {
            foreach (var container in workload.Containers)
            {
                var resources = container.Node["resources"];
                foreach (var resource in new[] { "cpu", "memory" })
                {
                    var where = $"{target}: {workload.Name}/{container.Name} {resource}";
                    var request = resources?["requests"]?[resource]?.ToString();
                    var limit = resources?["limits"]?[resource]?.ToString();
                    Assert.True(request is not null, $"{where}: no request");
                    Assert.True(limit is not null, $"{where}: no limit");
                    Assert.True(KubeSemantics.Quantity(request!) <= KubeSemantics.Quantity(limit!), $"{where}: request {request} > limit {limit}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Decoder_memory_request_covers_its_weights_and_the_kv_cache_of_its_configured_slots(string target)
    {
        var manifest = RenderedManifest.For(target);
        var decoder = manifest.Workload("decoder-worker").MainContainer;
        var env = manifest.Environment(decoder);
        var slots = long.Parse(env["Decoder__MaxRunning"], CultureInfo.InvariantCulture);
        var tokens = long.Parse(env["Decoder__MaxSequenceTokens"], CultureInfo.InvariantCulture);
        // Full-size Kosmos-2 text decoder: 24 layers, hidden 2048; bfloat16 = 2 bytes; K and V.
        var kvCache = slots * tokens * 24 * 2 * 2048 * 2;
        const long weights = 2_700_000_000 + 270_000_000; // decoder + token embeddings (65,037 x 2048), bf16
        const long runtime = 1L << 30; // libtorch + .NET + activations
        var request = KubeSemantics.Quantity(decoder.Node["resources"]!["requests"]!["memory"]!.ToString());
        Assert.True(request >= kvCache + weights + runtime,
            $"{target}: decoder memory request {request} B < {kvCache} B KV cache + {weights} B weights + {runtime} B runtime");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Gpus_are_requested_only_by_the_workers_of_the_gpu_overlay(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var workload in manifest.Workloads)
        {
            foreach (var container in workload.Containers)
            {
                var gpus = new[] { "requests", "limits" }
                    .Select(kind => container.Node["resources"]?[kind]?["nvidia.com/gpu"]?.ToString())
                    .ToList();
                var expected = manifest.IsGpu && Workers.Contains(workload.Name) && !container.IsInit ? "1" : null;
                Assert.True(gpus.All(g => g == expected),
                    $"{target}: {workload.Name}/{container.Name} nvidia.com/gpu = {string.Join('/', gpus)}, expected {expected ?? "none"}");
            }
            // The GPU request alone places a pod on a GPU node; a nodeSelector on a feature-discovery label
            // (nvidia.com/gpu.present) would leave it Pending on clusters with only the device plugin.
            Assert.True(workload.PodSpec["nodeSelector"] is null, $"{target}: {workload.Name} has a nodeSelector");
            var toleratesGpuTaint = workload.PodSpec["tolerations"]?.AsArray().Any(t => t!["key"]?.ToString() == "nvidia.com/gpu") == true;
            Assert.True(toleratesGpuTaint == (manifest.IsGpu && Workers.Contains(workload.Name)), $"{target}: {workload.Name} tolerates the GPU taint = {toleratesGpuTaint}");
        }
        foreach (var worker in Workers)
        {
            var container = manifest.Workload(worker).MainContainer;
            var image = container.Node["image"]!.ToString();
            Assert.True(image.EndsWith("-cuda", StringComparison.Ordinal) == manifest.IsGpu, $"{target}: {worker} runs {image}");
            var device = manifest.Environment(container).Single(kv => kv.Key.EndsWith("__Device", StringComparison.Ordinal)).Value;
            Assert.Equal(manifest.IsGpu ? "cuda" : "cpu", device);
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Autoscalers_scale_the_two_workers_on_queue_metrics_not_cpu(string target)
    {
        var manifest = RenderedManifest.For(target);
        var expected = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["decoder-worker"] = ["kosmos2_decoder_running_requests", "kosmos2_decoder_waiting_requests"],
            ["vision-worker"] = ["kosmos2_vision_queue_length"],
        };
        var autoscalers = manifest.OfKind("HorizontalPodAutoscaler").ToList();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal),
            autoscalers.Select(h => h["spec"]!["scaleTargetRef"]!["name"]!.ToString()).Order(StringComparer.Ordinal));
        foreach (var hpa in autoscalers)
        {
            Assert.Equal("autoscaling/v2", hpa["apiVersion"]!.ToString());
            var targetRef = hpa["spec"]!["scaleTargetRef"]!;
            Assert.Equal("Deployment", targetRef["kind"]!.ToString());
            var metrics = hpa["spec"]!["metrics"]!.AsArray().OfType<JsonObject>().ToList();
            Assert.All(metrics, m => Assert.Equal("Pods", m["type"]!.ToString()));
            Assert.Equal(expected[targetRef["name"]!.ToString()],
                metrics.Select(m => m["pods"]!["metric"]!["name"]!.ToString()).Order(StringComparer.Ordinal));
            // The autoscaler owns the replica count: a replicas field would reset it on every apply.
            Assert.Null(manifest.Get("Deployment", targetRef["name"]!.ToString())["spec"]!["replicas"]);
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_service_has_a_disruption_budget_that_lets_nodes_drain(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var name in GrpcPorts.Keys)
        {
            var workload = manifest.Workload(name);
            var budget = Assert.Single(manifest.OfKind("PodDisruptionBudget"), p => KubeSemantics.Matches(p["spec"]!["selector"], workload.PodLabels));
            var maxUnavailable = budget["spec"]!["maxUnavailable"]?.ToString();
            Assert.True(maxUnavailable is not null and not "0" and not "0%", $"{target}: PDB of {name} must allow one pod out (maxUnavailable = {maxUnavailable})");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Services_read_only_known_settings_and_agree_with_their_ports(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var (name, port) in GrpcPorts)
        {
            var workload = manifest.Workload(name);
            var container = workload.MainContainer;
            var env = manifest.Environment(container);
            var unknown = env.Keys.Where(k => !KnownEnvironment.Contains(k)).ToList();
            Assert.True(unknown.Count == 0, $"{target}: {name} sets settings no service reads: {string.Join(", ", unknown)}");
            Assert.Equal(port.ToString(CultureInfo.InvariantCulture), env["Service__Port"]);
            Assert.Equal(MetricsPort.ToString(CultureInfo.InvariantCulture), env["Service__MetricsPort"]);
            Assert.Equal(MetricsPort, container.Port("metrics"));
            Assert.Equal("0.0.0.0", env["Service__Host"]);
            Assert.Contains("OTEL_EXPORTER_OTLP_ENDPOINT", env.Keys);

            var annotations = RenderedManifest.Labels(workload.Object["spec"]!["template"]!["metadata"]!["annotations"]);
            Assert.Equal("true", annotations.GetValueOrDefault("prometheus.io/scrape"));
            Assert.Equal(MetricsPort.ToString(CultureInfo.InvariantCulture), annotations.GetValueOrDefault("prometheus.io/port"));
            Assert.Equal("/metrics", annotations.GetValueOrDefault("prometheus.io/path"));
        }
        var gateway = manifest.Environment(manifest.Workload("gateway").MainContainer);
        Assert.Equal(HttpPort.ToString(CultureInfo.InvariantCulture), gateway["Service__HttpPort"]);
        Assert.Equal(HttpPort, manifest.Workload("gateway").MainContainer.Port("http"));
        // Two Redis settings: sessions (data) for the gateway, the embedding cache for the vision worker; each with the
        // password from the Secret, never a literal.
        var vision = manifest.Environment(manifest.Workload("vision-worker").MainContainer);
        var decoder = manifest.Environment(manifest.Workload("decoder-worker").MainContainer);
        Assert.False(string.IsNullOrWhiteSpace(gateway.GetValueOrDefault("Redis__Sessions")), $"{target}: the gateway has no Redis__Sessions");
        Assert.False(string.IsNullOrWhiteSpace(vision.GetValueOrDefault("Redis__Cache")), $"{target}: the vision worker has no Redis__Cache");
        foreach (var env in new[] { gateway, vision })
        {
            Assert.Equal(RenderedManifest.SecretReference("kosmos2-redis", "password"), env.GetValueOrDefault("Redis__Password"));
        }
        Assert.DoesNotContain(decoder.Keys, k => k.StartsWith("Redis__", StringComparison.Ordinal));
        Assert.Equal("dns:///vision-worker:50052", gateway["Gateway__VisionWorkers"]);
        Assert.Equal("dns:///decoder-worker:50053", gateway["Gateway__DecoderWorkers"]);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Upgrades_and_scale_downs_let_in_flight_streams_finish(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var name in GrpcPorts.Keys)
        {
            var workload = manifest.Workload(name);
            var container = workload.MainContainer;
            var rolling = workload.Object["spec"]!["strategy"]?["rollingUpdate"];
            // On GPUs a surge pod would wait for a GPU a full pool never frees: one old pod stops first instead, which
            // the two-replica minimum covers (Gpu_rollouts_need_no_spare_gpu). Elsewhere a new pod is Ready first.
            var (maxSurge, maxUnavailable) = manifest.IsGpu && Workers.Contains(name) ? ("0", "1") : ("1", "0");
            Assert.Equal(maxUnavailable, rolling?["maxUnavailable"]?.ToString());
            Assert.Equal(maxSurge, rolling?["maxSurge"]?.ToString());

            var preStop = container.Node["lifecycle"]?["preStop"];
            var sleep = preStop?["sleep"]?["seconds"]?.GetValue<int>()
                ?? (preStop?["exec"]?["command"]?.AsArray() is [{ } program, { } seconds] && program.ToString() == "sleep"
                    ? int.Parse(seconds.ToString(), CultureInfo.InvariantCulture) : (int?)null);
            // A terminating worker stays in a gateway's resolver for up to its refresh period plus the headless
            // record's 5 s TTL: it must still serve that long before SIGTERM.
            var refresh = int.Parse(manifest.Environment(manifest.Workload("gateway").MainContainer)["Gateway__DnsRefreshSeconds"], CultureInfo.InvariantCulture);
            Assert.True(sleep >= refresh + 5, $"{target}: {name} preStop sleeps {sleep?.ToString(CultureInfo.InvariantCulture) ?? "not at all"} s < DNS refresh {refresh} s + 5 s");

            var drain = int.Parse(manifest.Environment(container)["Service__ShutdownTimeoutSeconds"], CultureInfo.InvariantCulture);
            var grace = workload.PodSpec["terminationGracePeriodSeconds"]?.GetValue<int>() ?? 30;
            Assert.True(grace >= sleep + drain, $"{target}: {name} grace {grace} s < preStop {sleep} s + drain {drain} s");
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Workers_read_the_model_folder_read_only_and_the_gateway_reads_api_keys_from_a_secret_file(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var worker in Workers)
        {
            var workload = manifest.Workload(worker);
            AssertModelMountedReadOnly(manifest, workload, "__ModelDir");
            if (ModelVolume(workload)["emptyDir"] is { } emptyDir)
            {
                // A worker's own download holds the ~6.7 GB float32 checkpoint.
                Assert.True(KubeSemantics.Quantity(emptyDir["sizeLimit"]!.ToString()) >= 7m * 1024 * 1024 * 1024,
                    $"{target}: {worker}'s model emptyDir cannot hold the weights");
            }
        }

        // The gateway reads its tokenizer from its own image: no model volume, so the API never waits for shared storage.
        var gatewayWorkload = manifest.Workload("gateway");
        Assert.DoesNotContain(gatewayWorkload.PodSpec["volumes"]!.AsArray(), v => v!["persistentVolumeClaim"] is not null);
        var tokenizerDir = manifest.Environment(gatewayWorkload.MainContainer)["Gateway__TokenizerDir"];
        Assert.DoesNotContain(gatewayWorkload.MainContainer.Node["volumeMounts"]!.AsArray(),
            m => (tokenizerDir + "/").StartsWith(m!["mountPath"]!.ToString().TrimEnd('/') + "/", StringComparison.Ordinal));

        var gateway = gatewayWorkload.MainContainer;
        var keysFile = manifest.Environment(gateway)["Auth__ApiKeysFile"];
        Assert.Equal("/etc/kosmos2/api-keys/keys.json", keysFile);
        var keysMount = Assert.Single(gateway.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(),
            m => keysFile.StartsWith(m["mountPath"]!.ToString() + "/", StringComparison.Ordinal));
        Assert.True(keysMount["readOnly"]?.GetValue<bool>() == true);
        Assert.NotNull(Volume(gatewayWorkload, keysMount["name"]!.ToString())["secret"]?["secretName"]);
    }

    /// <summary>The main container mounts the model folder read-only at <see cref="ModelPath"/>, the setting that ends
    /// with <paramref name="settingSuffix"/> points at it, and the volume is the PVC or an emptyDir an init container fills.</summary>
    private static void AssertModelMountedReadOnly(RenderedManifest manifest, Workload workload, string settingSuffix)
    {
        var where = $"{manifest.Target}: {workload.Name}";
        var container = workload.MainContainer;
        var mount = Assert.Single(container.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(), m => m["mountPath"]!.ToString() == ModelPath);
        Assert.True(mount["readOnly"]?.GetValue<bool>() == true, $"{where} mounts the model writable");
        Assert.Equal(ModelPath, manifest.Environment(container).Single(kv => kv.Key.EndsWith(settingSuffix, StringComparison.Ordinal)).Value);

        var volume = Volume(workload, mount["name"]!.ToString());
        if (volume["persistentVolumeClaim"] is { } claim)
        {
            Assert.True(claim["readOnly"]?.GetValue<bool>() == true, $"{where} claims the model volume writable");
            Assert.NotNull(manifest.Get("PersistentVolumeClaim", claim["claimName"]!.ToString()));
        }
        else
        {
            // The download alternative: an init container fills the pod's own volume before the service starts.
            Assert.True(volume["emptyDir"] is not null, $"{where}: the model volume is neither the PVC nor an emptyDir");
            Assert.Contains(workload.Containers, c => c.IsInit && c.Node["volumeMounts"]!.AsArray().Any(m => m!["name"]!.ToString() == mount["name"]!.ToString()));
        }
    }

    private static JsonObject ModelVolume(Workload workload) =>
        Volume(workload, Assert.Single(workload.MainContainer.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(),
            m => m["mountPath"]!.ToString() == ModelPath)["name"]!.ToString());

    private static JsonObject Volume(Workload workload, string name) =>
        Assert.Single(workload.PodSpec["volumes"]!.AsArray().OfType<JsonObject>(), v => v["name"]!.ToString() == name);

    internal static int StartupAllowanceSeconds(Container container)
    {
        var probe = container.Node["startupProbe"]!;
        var period = probe["periodSeconds"]?.GetValue<int>() ?? 10;
        var failures = probe["failureThreshold"]?.GetValue<int>() ?? 3;
        return (probe["initialDelaySeconds"]?.GetValue<int>() ?? 0) + (period * failures);
    }
}
