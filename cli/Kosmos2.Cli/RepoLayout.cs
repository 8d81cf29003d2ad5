namespace Kosmos2.Cli;

/// <summary>Finds the built services: <c>$KOSMOS2_SERVICES_DIR/&lt;folder&gt;/&lt;Name&gt;.dll</c> when set (an installed layout),
/// else the repository's own build output next to this CLI's.</summary>
internal static class RepoLayout
{
    private const string BuildConfiguration =
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    public static string ServiceAssembly(string folder, string name)
    {
        var installed = Environment.GetEnvironmentVariable("KOSMOS2_SERVICES_DIR");
        var path = string.IsNullOrEmpty(installed)
            ? Path.Combine(RepoRoot(), folder, "bin", BuildConfiguration, "net10.0", "linux-x64", name + ".dll")
            : Path.Combine(installed, folder, name + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path} is missing: build the solution (dotnet build Kosmos2.Grpc.sln) or set KOSMOS2_SERVICES_DIR.");
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kosmos2.Grpc.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Cannot find the repository (Kosmos2.Grpc.sln) above " + AppContext.BaseDirectory);
    }
}
