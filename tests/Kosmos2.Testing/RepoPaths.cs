namespace Kosmos2.Testing;

/// <summary>Where things are: the repository root, the golden data, the built services.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>The folder holding <c>Kosmos2.Grpc.sln</c>.</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>
    /// <c>$KOSMOS2_GOLDEN_DIR</c> (another family of golden data in the same layout), else the repository's own copy,
    /// <c>tests/golden</c>, so a fresh clone with nothing beside it tests itself.
    /// </summary>
    public static string GoldenDir
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("KOSMOS2_GOLDEN_DIR");
            var dir = string.IsNullOrWhiteSpace(fromEnv)
                ? Path.Combine(RepoRoot, "tests", "golden")
                : Path.GetFullPath(fromEnv, RepoRoot);
            if (!Directory.Exists(dir))
            {
                throw new DirectoryNotFoundException(
                    $"Golden data not found at {dir}: set KOSMOS2_GOLDEN_DIR to a folder in the golden layout (tests/golden is the repository's own).");
            }
            return dir;
        }
    }

    /// <summary>The golden checkpoint folder (<c>golden/model</c>).</summary>
    public static string GoldenModelDir => Path.Combine(GoldenDir, "model");

    /// <summary>Configuration this test assembly was built in; the services are built the same way.</summary>
    public static string Configuration =>
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    /// <summary>The built entry assembly of a project, e.g. (<c>gateway</c>, <c>Kosmos2.Gateway</c>).</summary>
    public static string BuiltAssembly(string projectFolder, string assemblyName)
    {
        var path = Path.Combine(RepoRoot, projectFolder, "bin", Configuration, "net10.0", "linux-x64", assemblyName + ".dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is not built: build the solution first (dotnet build Kosmos2.Grpc.sln).", path);
        }
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kosmos2.Grpc.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Kosmos2.Grpc.sln above {AppContext.BaseDirectory}.");
    }
}
