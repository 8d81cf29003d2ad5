using TorchSharp;

namespace Kosmos2.Model.Tests;

/// <summary>A worker's Threads setting: 0 follows the CPUs .NET says this process may use (cgroup-aware), not libtorch's count of the machine's cores.</summary>
[Collection(GoldenModelCollection.Name)]
public sealed class TorchThreadsTests
{
    [Fact]
    public void Zero_uses_the_process_cpu_count_and_a_number_is_taken_as_given()
    {
        var before = torch.get_num_threads();
        try
        {
            Assert.Equal(1, TorchThreads.Apply(1));
            Assert.Equal(1, torch.get_num_threads());
            Assert.Equal(Environment.ProcessorCount, TorchThreads.Apply(0));
            Assert.Equal(Environment.ProcessorCount, torch.get_num_threads());
            Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.Apply(-1));
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }
}
