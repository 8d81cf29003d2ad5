using Kosmos2.Kernels;
using TorchSharp;

namespace Kosmos2.Model.Tests;

/// <summary>Decoder:Kernels resolution: torch on request or off the CPU, native where the CPU has vector kernels (auto).</summary>
public sealed class KernelChoiceTests
{
    [Fact]
    public void Torch_is_taken_on_request_and_on_cuda_whatever_was_asked()
    {
        Assert.Null(KernelChoice.Resolve("torch", torch.CPU, 2, out var description));
        Assert.StartsWith("torch", description, StringComparison.Ordinal);
        foreach (var setting in new[] { "native", "auto", "" })
        {
            Assert.Null(KernelChoice.Resolve(setting, new torch.Device(DeviceType.CUDA, 0), 2, out description));
            Assert.Contains("CPU-only", description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Auto_is_native_exactly_when_the_cpu_has_vector_kernels_and_native_always_is_on_the_cpu()
    {
        var auto = KernelChoice.Resolve("AUTO", torch.CPU, 3, out _);
        Assert.Equal(Bf16Kernels.BestIsa != KernelIsa.Portable, auto is not null);
        var native = KernelChoice.Resolve(" native ", torch.CPU, 3, out var description);
        Assert.NotNull(native);
        Assert.Equal(Bf16Kernels.BestIsa, native.Isa);
        Assert.Equal(3, native.Threads);
        Assert.StartsWith("native", description, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_setting_is_refused_with_the_values_that_work()
    {
        var error = Assert.Throws<ArgumentException>(() => KernelChoice.Resolve("fast", torch.CPU, 1, out _));
        Assert.Contains("native, torch or auto", error.Message, StringComparison.Ordinal);
    }
}
