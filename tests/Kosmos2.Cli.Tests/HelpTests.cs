using System.Text.RegularExpressions;

namespace Kosmos2.Cli.Tests;

/// <summary><c>--help</c> on every command prints that command's usage and exits 0.</summary>
public sealed partial class HelpTests
{
    [Fact]
    public async Task Every_command_listed_by_help_answers_its_own_help_flag()
    {
        var (exit, stdout, _) = await CliProcess.RunAsync(["help"]);
        Assert.Equal(0, exit);
        var commands = CommandLine().Matches(stdout).Select(m => m.Groups[1].Value).Where(c => c != "help").Distinct().ToList();
        Assert.Contains("up", commands);
        Assert.Contains("caption", commands);
        Assert.Contains("generate", commands);

        foreach (var command in commands)
        {
            foreach (var args in new string[][] { [command, "--help"], [command, "-h"], ["help", command], [command, "some.png", "--help"] })
            {
                var run = await CliProcess.RunAsync(args);
                Assert.True(run.ExitCode == 0, $"kosmos2 {string.Join(' ', args)}: exit {run.ExitCode}, {run.Stderr}");
                Assert.StartsWith($"usage: kosmos2 {command}", run.Stdout);
            }
        }
    }

    [Fact]
    public async Task An_unknown_command_exits_2()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(["frobnicate", "--help"]);
        Assert.Equal(2, exit);
        Assert.Contains("Unknown command 'frobnicate'", stderr);
    }

    /// <summary>A command line of the overview: two spaces, then the command's name.</summary>
    [GeneratedRegex(@"^  ([a-z]+)\b", RegexOptions.Multiline)]
    private static partial Regex CommandLine();
}
