
namespace Kosmos2.Engine.Tests;

/// <summary>The engine library stays free of TorchSharp (DESIGN.md: the scheduler never sees a tensor).</summary>
public sealed class EngineProjectTests
{
    [Fact]
    public void Engine_assembly_does_not_reference_TorchSharp()
    {
        var engine = typeof(GenerationEngine).Assembly;
        Assert.DoesNotContain(engine.GetReferencedAssemblies(), a => a.Name!.StartsWith("TorchSharp", StringComparison.Ordinal));
    }
}
