using System.Diagnostics;

namespace Kosmos2.Cli.Tests;

/// <summary>Runs the built <c>kosmos2</c> command as a user would and collects its output.</summary>
internal static class CliProcess
{
    public static string Assembly => RepoPaths.BuiltAssembly(Path.Combine("cli", "Kosmos2.Cli"), "kosmos2");

    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Assembly);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        return start;
    }

    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IEnumerable<string> args, string? stdin = null,
        IReadOnlyDictionary<string, string>? environment = null, int timeoutSeconds = 120)
    {
        using var process = Process.Start(StartInfo(args, environment))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kosmos2 {string.Join(' ', args)} did not finish in {timeoutSeconds} s. stderr: {await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
