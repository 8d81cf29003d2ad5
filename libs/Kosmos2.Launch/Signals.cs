using System.Runtime.InteropServices;

namespace Kosmos2.Launch;

/// <summary>POSIX signals to child processes (.NET's Process.Kill only sends SIGKILL).</summary>
public static class Signals
{
    private const int SigTerm = 15;

    /// <summary>SIGTERM: what Kubernetes sends; our services drain and exit, Redis syncs its append-only file.</summary>
    public static int Terminate(int pid) => Kill(pid, SigTerm);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
