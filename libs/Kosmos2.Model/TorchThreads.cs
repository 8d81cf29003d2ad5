using TorchSharp;

namespace Kosmos2.Model;

/// <summary>libtorch's intra-op thread count for a worker process.</summary>
public static class TorchThreads
{
    /// <summary>
    /// Sets libtorch's intra-op threads to <paramref name="requested"/>, or with 0 to
    /// <see cref="Environment.ProcessorCount"/> — the CPUs this process may use, which .NET derives from the
    /// container's CPU limit (cgroup quota) and affinity. libtorch's own default is every core of the machine: in a
    /// pod limited to 8 CPUs on a 64-core node that is 64 threads in an 8-CPU quota, throttled at every barrier.
    /// Returns the count now in use.
    /// </summary>
    public static int Apply(int requested)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(requested);
        torch.set_num_threads(requested > 0 ? requested : Environment.ProcessorCount);
        return torch.get_num_threads();
    }
}
