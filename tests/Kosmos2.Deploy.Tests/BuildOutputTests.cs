namespace Kosmos2.Deploy.Tests;

/// <summary>
/// The repository's build settings as a running service sees them. Outputs are hard-linked (Directory.Build.props), so a
/// project's obj assembly is the same file as every bin folder's copy of it; a compile must write a new file, or it
/// changes the assembly under services already running from those folders (they died with AccessViolationException).
/// A probe project under the repository's ignored <c>bin/</c> takes the repository's Directory.Build.props/targets.
/// </summary>
public sealed class BuildOutputTests : IDisposable
{
    private readonly string _dir = Path.Combine(RepoPaths.RepoRoot, "bin", $"build-probe-{Guid.NewGuid():N}");

    public BuildOutputTests()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, "Probe.csproj"),
            "<Project Sdk=\"Microsoft.NET.Sdk\"><PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup></Project>\n");
        WriteSource(1);
    }

    [Fact]
    public void A_recompile_writes_a_new_assembly_file_and_leaves_a_hard_linked_copy_as_it_was()
    {
        Build();
        var assembly = Path.Combine(_dir, "obj", "Release", "net10.0", "linux-x64", "Probe.dll");
        Assert.True(File.Exists(assembly), $"the probe built no {assembly}");
        // A running service's bin copy of the assembly: a hard link to the obj file, as the build makes it.
        var runningCopy = Path.Combine(_dir, "running-copy.dll");
        var link = ExternalTools.Run("ln", [assembly, runningCopy], _dir, TimeSpan.FromSeconds(10));
        Assert.True(link.ExitCode == 0, link.StdErr);
        var before = File.ReadAllBytes(runningCopy);

        // A no-op build leaves the assembly alone (the unlink runs only before a compile that will run).
        var written = File.GetLastWriteTimeUtc(assembly);
        Build();
        Assert.Equal(written, File.GetLastWriteTimeUtc(assembly));

        WriteSource(2);
        Build();
        Assert.NotEqual(before, File.ReadAllBytes(assembly)); // it did recompile
        Assert.Equal(before, File.ReadAllBytes(runningCopy)); // and the linked copy kept its bytes
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left under the ignored bin/ folder; the next clean removes it.
        }
    }

    private void WriteSource(int value) => File.WriteAllText(Path.Combine(_dir, "Probe.cs"),
        $"namespace Probe;\n\n/// <summary>A value that changes between builds.</summary>\npublic static class Value\n{{\n    /// <summary>The value.</summary>\n    public const int Current = {value};\n}}\n");

    private void Build()
    {
        // No build server or node reuse: nothing of the probe's build outlives the test.
        var result = ExternalTools.Run("dotnet", ["build", "-c", "Release", "-nologo", "-v:q", "-nodeReuse:false", "-p:UseSharedCompilation=false"],
            _dir, TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"dotnet build of the probe failed:\n{result.StdOut}\n{result.StdErr}");
    }
}
