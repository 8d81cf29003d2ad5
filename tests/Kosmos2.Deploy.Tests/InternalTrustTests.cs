using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>
/// Trust inside the cluster and at its edge: the gateway and every worker read the same internal secret from a mounted
/// Secret; Redis requires a password and runs in protected mode; the decoder, which never uses Redis, gets neither
/// Redis settings nor its password; the TLS component terminates TLS for the gRPC API with a certificate cert-manager
/// keeps issued.
/// </summary>
public sealed class InternalTrustTests
{
    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_gateway_and_every_worker_read_the_same_internal_secret_from_a_mounted_secret(string target)
    {
        var manifest = RenderedManifest.For(target);
        var sources = new Dictionary<string, (string Secret, string Key)>(StringComparer.Ordinal);
        foreach (var service in ManifestTests.GrpcPorts.Keys)
        {
            var workload = manifest.Workload(service);
            var container = workload.MainContainer;
            var file = manifest.Environment(container).GetValueOrDefault("Internal__SecretFile");
            Assert.False(string.IsNullOrEmpty(file), $"{target}: {service} is not given Internal__SecretFile");
            var mount = Assert.Single(container.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(),
                m => file.StartsWith(m["mountPath"]!.ToString().TrimEnd('/') + "/", StringComparison.Ordinal));
            Assert.True(mount["readOnly"]?.GetValue<bool>() == true, $"{target}: {service} mounts its internal secret writable");
            var volume = Assert.Single(workload.PodSpec["volumes"]!.AsArray().OfType<JsonObject>(), v => v["name"]!.ToString() == mount["name"]!.ToString());
            var secret = volume["secret"] ?? throw new Xunit.Sdk.XunitException($"{target}: {service}'s {file} is not on a Secret volume");
            // The file is the item whose path is the rest of the setting after the mount (a Secret key, as the kubelet writes it).
            var relative = file[(mount["mountPath"]!.ToString().TrimEnd('/').Length + 1)..];
            var items = secret["items"]?.AsArray().OfType<JsonObject>().ToList();
            var key = items is null ? relative : Assert.Single(items, i => i["path"]!.ToString() == relative)["key"]!.ToString();
            Assert.NotEqual(true, secret["optional"]?.GetValue<bool>());
            sources[service] = (secret["secretName"]!.ToString(), key);
        }
        Assert.True(sources.Values.Distinct().Count() == 1,
            $"{target}: the services read different internal secrets: {string.Join(", ", sources.Select(s => $"{s.Key}={s.Value.Secret}/{s.Value.Key}"))}");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Redis_runs_in_protected_mode_with_a_password_and_the_decoder_gets_no_redis_settings(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var redis in manifest.Workloads.Where(w => w.Name.StartsWith("redis", StringComparison.Ordinal)))
        {
            var args = redis.MainContainer.Node["args"]?.AsArray().Select(a => a!.ToString()).ToList() ?? [];
            var protectedMode = args.IndexOf("--protected-mode");
            Assert.True(protectedMode < 0 || args[protectedMode + 1] == "yes", $"{target}: {redis.Name} turns protected mode off");
            var requirepass = args.IndexOf("--requirepass");
            Assert.True(requirepass >= 0 && args[requirepass + 1].Length > 0, $"{target}: {redis.Name} requires no password");
        }
        // The decoder never calls Redis: it must not be given where Redis is or its password.
        var decoder = manifest.Environment(manifest.Workload("decoder-worker").MainContainer);
        Assert.DoesNotContain(decoder.Keys, k => k.StartsWith("Redis__", StringComparison.Ordinal));
        Assert.DoesNotContain(decoder.Values, v => v.StartsWith("$(secret:kosmos2-redis/", StringComparison.Ordinal));
    }

    [Fact]
    public void The_tls_component_terminates_tls_for_the_grpc_port_with_a_certificate_cert_manager_issues()
    {
        Assert.Contains("base+components/tls", RenderedManifest.DiscoverTargets());
        var manifest = RenderedManifest.For("base+components/tls");
        var service = manifest.Get("Service", "gateway");

        var ingress = Assert.Single(manifest.OfKind("Ingress"));
        var annotations = ingress["metadata"]!["annotations"]!;
        Assert.Equal("GRPC", annotations["nginx.ingress.kubernetes.io/backend-protocol"]!.ToString());
        var tls = Assert.Single(ingress["spec"]!["tls"]!.AsArray())!;
        var rule = Assert.Single(ingress["spec"]!["rules"]!.AsArray())!;
        var host = rule["host"]!.ToString();
        Assert.Contains(host, tls["hosts"]!.AsArray().Select(h => h!.ToString()));
        var backend = Assert.Single(rule["http"]!["paths"]!.AsArray())!["backend"]!["service"]!;
        Assert.Equal(RenderedManifest.NameOf(service), backend["name"]!.ToString());
        Assert.Equal(RenderedManifest.NamespaceOf(service), RenderedManifest.NamespaceOf(ingress));
        var port = Assert.Single(service["spec"]!["ports"]!.AsArray(), p => p!["name"]!.ToString() == backend["port"]!["name"]!.ToString())!;
        Assert.Equal(ManifestTests.GrpcPorts["gateway"], port["port"]!.GetValue<int>());

        // cert-manager writes the Secret the Ingress serves, for its host, from an Issuer of this manifest.
        var certificate = Assert.Single(manifest.OfKind("Certificate"), c => c["spec"]!["secretName"]!.ToString() == tls["secretName"]!.ToString());
        Assert.Equal(RenderedManifest.NamespaceOf(ingress), RenderedManifest.NamespaceOf(certificate));
        Assert.Contains(host, certificate["spec"]!["dnsNames"]!.AsArray().Select(h => h!.ToString()));
        var issuerRef = certificate["spec"]!["issuerRef"]!;
        var issuer = manifest.Get(issuerRef["kind"]?.ToString() ?? "Issuer", issuerRef["name"]!.ToString());
        Assert.Equal(RenderedManifest.NamespaceOf(certificate), RenderedManifest.NamespaceOf(issuer));
    }
}
