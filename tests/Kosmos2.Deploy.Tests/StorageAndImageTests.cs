using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kosmos2.Deploy.Tests;

/// <summary>A default install that can serve: storage a usual cluster can provision and fill, downloads that can run
/// under a read-only root filesystem at a pinned revision, and images only from the registry you point it at.</summary>
public sealed partial class StorageAndImageTests
{
    public const string PlaceholderRegistry = "registry.invalid/";

    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_image_comes_from_the_placeholder_registry_with_a_version(string target)
    {
        var manifest = RenderedManifest.For(target);
        foreach (var workload in manifest.Workloads)
        {
            foreach (var container in workload.Containers)
            {
                var image = container.Node["image"]!.ToString();
                Assert.True(image.StartsWith(PlaceholderRegistry, StringComparison.Ordinal),
                    $"{target}: {workload.Name}/{container.Name} runs {image}, not from {PlaceholderRegistry} (deploy/README.md, \"Images\")");
                Assert.Matches(VersionedImage(), image[PlaceholderRegistry.Length..]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void No_claim_is_read_only_many_and_the_model_claim_can_be_shared_and_written(string target)
    {
        var manifest = RenderedManifest.For(target);
        var claims = manifest.OfKind("PersistentVolumeClaim").Select(c => (Name: RenderedManifest.NameOf(c), Spec: c["spec"]!))
            .Concat(manifest.Workloads.SelectMany(w => w.Object["spec"]!["volumeClaimTemplates"]?.AsArray() ?? [])
                .Select(t => (Name: t!["metadata"]!["name"]!.ToString(), Spec: t["spec"]!)));
        foreach (var (name, spec) in claims)
        {
            var modes = spec["accessModes"]!.AsArray().Select(m => m!.ToString()).ToList();
            // ReadOnlyMany alone: no usual default class provisions it, and CSI publishes it read-only to its filler too.
            Assert.False(modes is ["ReadOnlyMany"], $"{target}: claim {name} is ReadOnlyMany only");
        }
        if (manifest.Find("PersistentVolumeClaim", "kosmos2-model") is { } model)
        {
            Assert.Contains("ReadWriteMany", model["spec"]!["accessModes"]!.AsArray().Select(m => m!.ToString()));
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void A_job_fills_the_model_claim_and_workers_wait_for_its_revision(string target)
    {
        var manifest = RenderedManifest.For(target);
        var jobs = manifest.Workloads.Where(w => w.Kind == "Job").ToList();
        if (manifest.Find("PersistentVolumeClaim", "kosmos2-model") is null)
        {
            Assert.Empty(jobs); // model-download: each worker fills its own emptyDir
            return;
        }
        var job = Assert.Single(jobs);
        var claimVolume = Assert.Single(job.PodSpec["volumes"]!.AsArray().OfType<JsonObject>(), v => v["persistentVolumeClaim"]?["claimName"]?.ToString() == "kosmos2-model");
        Assert.NotEqual(true, claimVolume["persistentVolumeClaim"]!["readOnly"]?.GetValue<bool>());
        var mount = Assert.Single(job.MainContainer.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(), m => m["name"]!.ToString() == claimVolume["name"]!.ToString());
        Assert.Equal(ManifestTests.ModelPath, mount["mountPath"]!.ToString());
        Assert.NotEqual(true, mount["readOnly"]?.GetValue<bool>());
        Assert.Equal("kosmos2-model", Assert.Single(job.MainContainer.Node["envFrom"]!.AsArray())!["configMapRef"]!["name"]!.ToString());

        foreach (var worker in ManifestTests.Workers)
        {
            var wait = Assert.Single(manifest.Workload(worker).Containers, c => c.IsInit);
            Assert.Contains(wait.Node["envFrom"]!.AsArray(), e => e!["configMapRef"]?["name"]?.ToString() == "kosmos2-model");
            Assert.Contains(".kosmos2-revision", Script(wait), StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Downloads_write_only_to_their_volumes_reserve_disk_and_refuse_an_unpinned_revision(string target)
    {
        var manifest = RenderedManifest.For(target);
        var revision = manifest.Get("ConfigMap", "kosmos2-model")["data"]?["MODEL_REVISION"]?.ToString();
        Assert.True(revision is not null && (revision.Length == 0 || CommitSha().IsMatch(revision)),
            $"{target}: MODEL_REVISION '{revision}' is neither empty (fails closed) nor a commit sha");

        var downloads = manifest.Workloads.SelectMany(w => w.Containers.Select(c => (Workload: w, Container: c)))
            .Where(x => Script(x.Container).Contains("pip install", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(downloads);
        foreach (var (workload, container) in downloads)
        {
            var where = $"{target}: {workload.Name}/{container.Name}";
            var script = Script(container);
            Assert.True(container.Node["securityContext"]?["readOnlyRootFilesystem"]?.GetValue<bool>() == true, $"{where}: root filesystem writable");
            var writable = (container.Node["volumeMounts"]?.AsArray().OfType<JsonObject>() ?? [])
                .Where(m => m["readOnly"]?.GetValue<bool>() != true).Select(m => m["mountPath"]!.ToString().TrimEnd('/') + "/").ToList();
            foreach (var variable in new[] { "TMPDIR", "HOME", "HF_HOME" })
            {
                var value = Regex.Match(script, $@"\b{variable}=(\S+)").Groups[1].Value;
                Assert.True(value.Length > 0 && writable.Any(w => (value + "/").StartsWith(w, StringComparison.Ordinal)),
                    $"{where}: {variable}='{value}' is not on a writable volume ({string.Join(", ", writable)})");
            }
            Assert.NotNull(container.Node["resources"]?["requests"]?["ephemeral-storage"]);
            Assert.DoesNotContain("revision=\"main\"", script, StringComparison.Ordinal);
            foreach (var unpinned in new[] { "", "main", "v1.0", "abc123" })
            {
                var (exitCode, stderr) = RunGuard(script, unpinned);
                Assert.True(exitCode != 0 && stderr.Contains("MODEL_REVISION", StringComparison.Ordinal),
                    $"{where}: MODEL_REVISION='{unpinned}' was not refused (exit {exitCode}): {stderr}");
            }
        }
    }

    internal static string Script(Container container) =>
        string.Join('\n', (container.Node["command"]?.AsArray() ?? []).Concat(container.Node["args"]?.AsArray() ?? []).Select(a => a!.ToString()));

    /// <summary>Runs a download script with /bin/sh and the given revision; a refused revision must stop it before it
    /// reaches the network (pip is not on the PATH here, so getting that far fails differently).</summary>
    private static (int ExitCode, string StdErr) RunGuard(string script, string revision)
    {
        var body = script.StartsWith("/bin/sh\n-c\n", StringComparison.Ordinal) ? script["/bin/sh\n-c\n".Length..] : script;
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(body);
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/bin:/bin";
        start.Environment["MODEL_ID"] = "microsoft/kosmos-2-patch14-224";
        start.Environment["MODEL_REVISION"] = revision;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out: " + stderr);
        }
        return (process.ExitCode, stderr);
    }

    /// <summary>REPOSITORY:TAG or REPOSITORY@sha256:DIGEST, never a bare name (latest) nor the tag "latest".</summary>
    [GeneratedRegex(@"^[a-z0-9./_-]+(:(?!latest$)[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")]
    private static partial Regex VersionedImage();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitSha();
}
