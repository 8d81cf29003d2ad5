using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>A pod-owning object (Deployment, StatefulSet, ...) and its pod template.</summary>
public sealed record Workload(string Kind, string Name, string Namespace, JsonObject Object, JsonObject PodSpec, IReadOnlyDictionary<string, string> PodLabels)
{
    /// <summary>Init containers first, then the main containers.</summary>
    public IEnumerable<Container> Containers =>
        Items(PodSpec["initContainers"]).Select(c => new Container(c, IsInit: true))
            .Concat(Items(PodSpec["containers"]).Select(c => new Container(c, IsInit: false)));

    public Container MainContainer => Containers.Single(c => !c.IsInit && c.Name == Name);

    private static IEnumerable<JsonObject> Items(JsonNode? array) => array?.AsArray().OfType<JsonObject>() ?? [];
}

/// <summary>One container of a pod template.</summary>
public sealed record Container(JsonObject Node, bool IsInit)
{
    public string Name => Node["name"]!.ToString();

    /// <summary>The containerPort of the port called <paramref name="portName"/>.</summary>
    public int? Port(string portName) =>
        Node["ports"]?.AsArray().OfType<JsonObject>().Where(p => p["name"]?.ToString() == portName)
            .Select(p => (int?)int.Parse(p["containerPort"]!.ToString(), CultureInfo.InvariantCulture)).FirstOrDefault();
}

/// <summary>The output of <c>kubectl kustomize</c> for one target, after deploy/tools/validate.mjs checked it against the
/// Kubernetes schemas. Targets: <c>base</c>, <c>overlays/NAME</c>, and <c>base+components/NAME</c> (the base with one
/// component applied, rendered through a temporary kustomization).</summary>
public sealed class RenderedManifest
{
    private static readonly ConcurrentDictionary<string, Lazy<RenderedManifest>> Cache = new();

    private RenderedManifest(string target, IReadOnlyList<JsonObject> objects, IReadOnlyList<string> schemaErrors)
    {
        Target = target;
        Objects = objects;
        SchemaErrors = schemaErrors;
    }

    public static string K8sDir => Path.Combine(RepoPaths.RepoRoot, "deploy", "k8s");

    public string Target { get; }

    public IReadOnlyList<JsonObject> Objects { get; }

    /// <summary>"Kind/name: message" for each object the schemas reject.</summary>
    public IReadOnlyList<string> SchemaErrors { get; }

    public bool IsGpu => Target.Contains("gpu", StringComparison.Ordinal);

    /// <summary>Every target under deploy/k8s: the base, each overlay folder, and the base with each component.</summary>
    public static IEnumerable<string> DiscoverTargets()
    {
        yield return "base";
        foreach (var folder in Folders("overlays"))
        {
            yield return "overlays/" + folder;
        }
        foreach (var folder in Folders("components"))
        {
            yield return "base+components/" + folder;
        }
    }

    public static RenderedManifest For(string target) =>
        Cache.GetOrAdd(target, t => new Lazy<RenderedManifest>(() => Render(t), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    public IEnumerable<JsonObject> OfKind(string kind) => Objects.Where(o => o["kind"]?.ToString() == kind);

    public JsonObject? Find(string kind, string name) => OfKind(kind).FirstOrDefault(o => NameOf(o) == name);

    public JsonObject Get(string kind, string name) =>
        Find(kind, name) ?? throw new Xunit.Sdk.XunitException($"{Target}: no {kind} named {name}.");

    public static string NameOf(JsonObject o) => o["metadata"]?["name"]?.ToString() ?? "";

    public static string NamespaceOf(JsonObject o) => o["metadata"]?["namespace"]?.ToString() ?? "default";

    public IEnumerable<Workload> Workloads =>
        Objects.Select(o => (o, template: o["kind"]?.ToString() switch
        {
            "Deployment" or "StatefulSet" or "DaemonSet" or "ReplicaSet" or "Job" => o["spec"]?["template"],
            "CronJob" => o["spec"]?["jobTemplate"]?["spec"]?["template"],
            _ => null,
        }))
        .Where(x => x.template is not null)
        .Select(x => new Workload(
            x.o["kind"]!.ToString(), NameOf(x.o), NamespaceOf(x.o), x.o,
            x.template!["spec"]!.AsObject(),
            Labels(x.template["metadata"]?["labels"])));

    public Workload Workload(string name) =>
        Workloads.FirstOrDefault(w => w.Name == name) ?? throw new Xunit.Sdk.XunitException($"{Target}: no workload named {name}.");

    /// <summary>
    /// The environment a container sees from its ConfigMaps (envFrom, in order) and its own env (last wins). A value
    /// from a Secret reads <c>$(secret:NAME/KEY)</c> (<see cref="SecretReference"/>); one from the container's resources
    /// (downward API <c>resourceFieldRef</c>) is resolved as the kubelet does: CPU in whole cores, rounded up.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment(Container container)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in container.Node["envFrom"]?.AsArray().OfType<JsonObject>() ?? [])
        {
            var mapName = source["configMapRef"]?["name"]?.ToString();
            if (mapName is null)
            {
                continue;
            }
            var map = Get("ConfigMap", mapName);
            foreach (var (key, value) in map["data"]?.AsObject() ?? [])
            {
                env[key] = value?.ToString() ?? "";
            }
        }
        foreach (var variable in container.Node["env"]?.AsArray().OfType<JsonObject>() ?? [])
        {
            env[variable["name"]!.ToString()] = variable["valueFrom"] switch
            {
                { } from when from["secretKeyRef"] is { } secret => SecretReference(secret["name"]!.ToString(), secret["key"]!.ToString()),
                { } from when from["resourceFieldRef"] is { } field => ResourceField(container, field),
                { } from => throw new Xunit.Sdk.XunitException($"{Target}: {container.Name} env {variable["name"]} uses a valueFrom these tests do not read: {from.ToJsonString()}"),
                null => variable["value"]?.ToString() ?? "",
            };
        }
        return env;
    }

    /// <summary>How <see cref="Environment"/> shows a value taken from key <paramref name="key"/> of Secret <paramref name="name"/>.</summary>
    public static string SecretReference(string name, string key) => $"$(secret:{name}/{key})";

    /// <summary><c>resourceFieldRef</c> of the container itself (divisor 1): requests/limits of cpu (whole cores, rounded
    /// up) or memory (bytes).</summary>
    private string ResourceField(Container container, JsonNode field)
    {
        var owner = field["containerName"]?.ToString() ?? container.Name;
        var parts = field["resource"]!.ToString().Split('.');
        if (owner != container.Name || parts.Length != 2 || (field["divisor"]?.ToString() ?? "1") != "1")
        {
            throw new Xunit.Sdk.XunitException($"{Target}: {container.Name} reads {field.ToJsonString()}; these tests resolve only its own requests/limits with divisor 1");
        }
        var quantity = container.Node["resources"]?[parts[0]]?[parts[1]]?.ToString()
            ?? throw new Xunit.Sdk.XunitException($"{Target}: {container.Name} reads {field["resource"]}, which it does not set");
        return Math.Ceiling(KubeSemantics.Quantity(quantity)).ToString(CultureInfo.InvariantCulture);
    }

    public static IReadOnlyDictionary<string, string> Labels(JsonNode? labels) =>
        labels?.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal)
        ?? new Dictionary<string, string>(StringComparer.Ordinal);

    public override string ToString() => Target;

    private static IEnumerable<string> Folders(string under)
    {
        var dir = Path.Combine(K8sDir, under);
        return Directory.Exists(dir)
            ? Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, "kustomization.yaml"))).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)
            : [];
    }

    private static RenderedManifest Render(string target)
    {
        var yaml = target.Contains('+', StringComparison.Ordinal) ? RenderComposed(target) : Kustomize(Path.Combine(K8sDir, target));
        var validate = ExternalTools.Run(ExternalTools.Node, [Path.Combine(ExternalTools.ToolsDir, "validate.mjs")], ExternalTools.ToolsDir, TimeSpan.FromMinutes(2), yaml);
        if (validate.ExitCode is not (0 or 1) || validate.StdOut.Length == 0)
        {
            throw new InvalidOperationException($"validate.mjs failed on {target} ({validate.ExitCode}):\n{validate.StdErr}");
        }
        var summary = JsonNode.Parse(validate.StdOut)!.AsObject();
        var errors = summary["errors"]!.AsArray().OfType<JsonObject>()
            .Select(e => $"{e["kind"]}/{e["name"]}: {e["message"]}").ToList();
        var objects = summary["objects"]!.AsArray().OfType<JsonObject>().ToList();
        return new RenderedManifest(target, objects, errors);
    }

    private static string Kustomize(string dir)
    {
        var result = ExternalTools.Run(ExternalTools.Kubectl, ["kustomize", dir], RepoPaths.RepoRoot, TimeSpan.FromMinutes(2));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"kubectl kustomize {dir} failed ({result.ExitCode}):\n{result.StdErr}");
        }
        return result.StdOut;
    }

    /// <summary>"base+components/x": a throw-away kustomization naming both. Kustomize refuses absolute paths to other
    /// kustomizations, so they are given relative to the temporary folder.</summary>
    private static string RenderComposed(string target)
    {
        var parts = target.Split('+');
        var dir = Directory.CreateTempSubdirectory("kosmos2-deploy-tests-");
        try
        {
            string Relative(string part) => Path.GetRelativePath(dir.FullName, Path.Combine(K8sDir, part));
            File.WriteAllText(Path.Combine(dir.FullName, "kustomization.yaml"),
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
                $"resources:\n  - {Relative(parts[0])}\ncomponents:\n" +
                string.Concat(parts.Skip(1).Select(p => $"  - {Relative(p)}\n")));
            return Kustomize(dir.FullName);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
