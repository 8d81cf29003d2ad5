using TorchSharp;

namespace Kosmos2.Model.Tests;

/// <summary>TorchSharp's native library loads on this machine (the GLIBCXX fix of Directory.Build.targets) and computes.</summary>
public sealed class TorchSharpLoadTests
{
    [Fact]
    public void Torch_loads_and_multiplies_matrices()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        var b = torch.tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        var product = torch.matmul(a, b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, product.data<float>().ToArray());
    }
}
