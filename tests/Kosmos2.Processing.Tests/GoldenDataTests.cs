namespace Kosmos2.Processing.Tests;

/// <summary>The golden data is where the tests look for it.</summary>
public sealed class GoldenDataTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public void Golden_directory_holds_the_checkpoint_and_cases()
    {
        Assert.True(File.Exists(Path.Combine(RepoPaths.GoldenModelDir, "config.json")));
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(RepoPaths.GoldenDir, "cases")));
    }
}
