namespace Kosmos2.Deploy.Tests;

/// <summary>The gateway's HTTP face in the manifests: reachable on its Service and through the NetworkPolicy from
/// anywhere (ingress controllers live in other namespaces), and the optional Ingress example routes to it.</summary>
public sealed class WebIngressTests
{
    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_gateway_http_port_is_open_to_clients_and_ingress_controllers_anywhere(string target)
    {
        var manifest = RenderedManifest.For(target);
        var gateway = manifest.Workload("gateway");
        foreach (var peer in new[] { PeerPod.Of("an ingress controller", "ingress-nginx", "ingress-nginx"), PeerPod.Of("a client pod", gateway.Namespace, "client") })
        {
            Assert.True(KubeSemantics.Admits(manifest, gateway, ManifestTests.HttpPort, peer), $"{target}: {peer.Description} cannot reach the gateway's HTTP port");
        }
    }

    [Fact]
    public void The_ingress_component_routes_every_path_of_its_host_to_the_gateway_http_port_without_buffering()
    {
        Assert.Contains("base+components/ingress", RenderedManifest.DiscoverTargets());
        var manifest = RenderedManifest.For("base+components/ingress");

        var ingress = Assert.Single(manifest.OfKind("Ingress"));
        var rule = Assert.Single(ingress["spec"]!["rules"]!.AsArray())!;
        var path = Assert.Single(rule["http"]!["paths"]!.AsArray())!;
        Assert.Equal("/", path["path"]!.ToString());
        Assert.Equal("Prefix", path["pathType"]!.ToString());
        var backend = path["backend"]!["service"]!;
        Assert.Equal("gateway", backend["name"]!.ToString());
        var service = manifest.Get("Service", "gateway");
        Assert.Equal(RenderedManifest.NamespaceOf(service), RenderedManifest.NamespaceOf(ingress));
        var port = Assert.Single(service["spec"]!["ports"]!.AsArray(), p => p!["name"]!.ToString() == backend["port"]!["name"]!.ToString())!;
        Assert.Equal(ManifestTests.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), port["port"]!.ToString());
        // Streamed answers must reach the browser as generated, not when the stream ends.
        Assert.Equal("off", ingress["metadata"]!["annotations"]!["nginx.ingress.kubernetes.io/proxy-buffering"]!.ToString());
    }
}
