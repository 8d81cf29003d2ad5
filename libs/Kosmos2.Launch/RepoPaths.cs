namespace Kosmos2.Launch;

/// <summary>Where things are: the repository root, the golden data, the built services (or an installed layout).</summary>
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

    /// <summary>Configuration this assembly was built in; the services are looked for in the same one first.</summary>
    public static string Configuration =>
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    /// <summary>
    /// The built entry assembly of a service, e.g. (<c>gateway</c>, <c>Kosmos2.Gateway</c>):
    /// <c>$KOSMOS2_SERVICES_DIR/&lt;folder&gt;/&lt;Name&gt;.dll</c> when set (an installed layout), else the repository's
    /// build output in this assembly's configuration, else in the other one.
    /// </summary>
    public static string BuiltAssembly(string projectFolder, string assemblyName)
    {
        var installed = Environment.GetEnvironmentVariable("KOSMOS2_SERVICES_DIR");
        var candidates = string.IsNullOrEmpty(installed)
            ? new[] { Configuration, Configuration == "Debug" ? "Release" : "Debug" }
                .Select(c => Path.Combine(RepoRoot, projectFolder, "bin", c, "net10.0", "linux-x64", assemblyName + ".dll")).ToArray()
            : [Path.Combine(installed, projectFolder, assemblyName + ".dll")];
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
            $"{candidates[0]} is missing: build the solution (dotnet build Kosmos2.Grpc.sln) or set KOSMOS2_SERVICES_DIR.", candidates[0]);
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
