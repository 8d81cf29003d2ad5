namespace Kosmos2.Engine.Tests;

public sealed class DeterminismTests
{
    [Fact]
    public void Same_seeded_workload_gives_the_same_plans_and_results()
    {
        var first = SeededWorkload.Run(seed: 42);
        var second = SeededWorkload.Run(seed: 42);

        Assert.Equal(first.Transcript, second.Transcript);
        Assert.Equal(first.Results, second.Results);
        Assert.True(first.Transcript.Length > 1000);
    }

    [Fact]
    public void A_different_seed_gives_a_different_workload()
    {
        Assert.NotEqual(SeededWorkload.Run(seed: 42).Transcript, SeededWorkload.Run(seed: 43).Transcript);
    }
}
