using System.Diagnostics;

namespace Kosmos2.Deploy.Tests;

/// <summary>What a process printed and how it ended.</summary>
public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr);

/// <summary>kubectl (with its embedded kustomize), node and the npm packages of deploy/tools. A missing tool
/// makes every test fail with a message saying what to install: these tests never skip.</summary>
public static class ExternalTools
{
    private static readonly Lazy<(string Kubectl, string Node)> Tools = new(Prepare, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary><c>deploy/tools</c>: validate.mjs and its package.json.</summary>
    public static string ToolsDir => Path.Combine(RepoPaths.RepoRoot, "deploy", "tools");

    public static string Kubectl => Tools.Value.Kubectl;

    public static string Node => Tools.Value.Node;

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>, feeding <paramref name="stdin"/>; kills it
    /// after <paramref name="timeout"/>.</summary>
    public static ProcessResult Run(string file, IEnumerable<string> args, string workingDirectory, TimeSpan timeout, string? stdin = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }
        process.StandardInput.Close();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish within {timeout.TotalSeconds} s.");
        }
        process.WaitForExit();
        return new ProcessResult(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    private static (string Kubectl, string Node) Prepare()
    {
        var kubectl = FindOnPath("kubectl") ?? throw new InvalidOperationException(
            "kubectl is not installed (not on PATH). The deploy tests render deploy/k8s with `kubectl kustomize`: install " +
            "kubectl 1.27 or newer (it embeds kustomize v5), e.g. from https://kubernetes.io/docs/tasks/tools/ or the " +
            "pkgs.k8s.io Debian repository.");
        var node = FindOnPath("node") ?? throw new InvalidOperationException(
            "node is not installed (not on PATH). The deploy tests validate the rendered manifests with " +
            "deploy/tools/validate.mjs: install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm).");

        // npm ci once per checkout (CI starts without node_modules), and again when package.json gained a package;
        // the lock file pins kubernetes-models 5.1.0, @kubernetes-models/prometheus-operator 6.0.0 and
        // @kubernetes-models/cert-manager 6.0.0.
        if (!Directory.Exists(Path.Combine(ToolsDir, "node_modules", "kubernetes-models"))
            || !Directory.Exists(Path.Combine(ToolsDir, "node_modules", "@kubernetes-models", "prometheus-operator"))
            || !Directory.Exists(Path.Combine(ToolsDir, "node_modules", "@kubernetes-models", "cert-manager")))
        {
            var npm = FindOnPath("npm") ?? throw new InvalidOperationException(
                "npm is not installed (not on PATH) and deploy/tools/node_modules is missing: install npm " +
                "(Debian: apt-get install npm) or run `npm ci --prefix deploy/tools` once.");
            var ci = Run(npm, ["ci", "--prefix", ToolsDir, "--no-audit", "--no-fund"], RepoPaths.RepoRoot, TimeSpan.FromMinutes(5));
            if (ci.ExitCode != 0)
            {
                throw new InvalidOperationException($"`npm ci --prefix deploy/tools` failed ({ci.ExitCode}):\n{ci.StdErr}\n{ci.StdOut}");
            }
        }
        return (kubectl, node);
    }

    private static string? FindOnPath(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return dirs.Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
    }
}
