using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

public sealed class HostCopyTests
{
    [Fact]
    public void Copies_a_tensors_values_into_the_callers_memory_and_refuses_what_does_not_fit()
    {
        using var scope = NewDisposeScope();
        var logits = torch.randn(3, 7);
        var expected = logits.data<float>().ToArray();
        var buffer = new float[30];
        HostCopy.CopyTo(logits, buffer.AsSpan(0, 21));
        Assert.Equal(expected, buffer[..21]);

        var transposed = logits.t(); // not contiguous: copied in its logical order
        HostCopy.CopyTo(transposed, buffer.AsSpan(0, 21));
        Assert.Equal(transposed.contiguous().data<float>().ToArray(), buffer[..21]);

        Assert.Throws<ArgumentException>(() => HostCopy.CopyTo(logits, buffer.AsSpan(0, 20)));
        Assert.Throws<ArgumentException>(() => HostCopy.CopyTo(logits.to(ScalarType.BFloat16), buffer.AsSpan(0, 21)));
    }
}
