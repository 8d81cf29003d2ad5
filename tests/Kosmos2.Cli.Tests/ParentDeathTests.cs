namespace Kosmos2.Cli.Tests;

/// <summary>
/// Nothing outlives the process that launched it: the children of a <c>kosmos2 up</c> killed with SIGKILL (no chance to
/// stop them) die with it, and a child does not die early when the thread that started it ends.
/// </summary>
public sealed class ParentDeathTests
{
    [Fact]
    public async Task A_child_outlives_the_thread_that_started_it()
    {
        Assert.True(ParentDeath.Wrapper is not null, "setpriv (util-linux) is not installed: children would outlive their parent");
        ServiceProcess? child = null;
        var thread = new Thread(() => child = ServiceProcess.StartProgram("sleep", "sleep", ["600"], new Dictionary<string, string>(), 0));
        thread.Start();
        thread.Join();
        await using var started = child!;

        // PR_SET_PDEATHSIG fires when the forking thread exits; a child forked from this thread would be dead by now.
        await Task.Delay(TimeSpan.FromSeconds(1));

        Assert.False(started.HasExited, $"the child died when the thread that started it ended: {started.RecentOutput}");
    }

    [Fact]
    public async Task The_children_of_a_killed_kosmos2_up_die_with_it()
    {
        var port = FreePort.Next();
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString()]);
        var children = up.Children;
        Assert.True(children.Count >= 4, $"expected redis + 3 services under kosmos2 up, found {children.Count}");

        UpProcess.KillHard(up.ProcessId);

        await Poll.UntilAsync(() => children.All(UpProcess.IsGone), TimeSpan.FromSeconds(20),
            $"the children of the killed kosmos2 up ({string.Join(", ", children)}) to die");
    }
}
