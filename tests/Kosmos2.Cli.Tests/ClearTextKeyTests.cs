namespace Kosmos2.Cli.Tests;

/// <summary>The CLI never sends an API key in clear text beyond this machine unless told the network is trusted.</summary>
public sealed class ClearTextKeyTests
{
    [Theory]
    [InlineData("caption")]
    [InlineData("batch")]
    public async Task A_key_for_an_http_gateway_beyond_loopback_is_refused_before_any_connection(string command)
    {
        var image = GoldenCase.All()[0].Image;
        var input = command == "batch" ? Path.GetDirectoryName(image)! : image;

        var (exit, _, stderr) = await CliProcess.RunAsync([command, input, "--gateway", "http://192.0.2.1:50051", "--api-key", "a-key-of-twenty-chars",
            .. command == "batch" ? new[] { "--output", Path.Combine(Path.GetTempPath(), $"kosmos2-cleartext-{Guid.NewGuid():N}.jsonl") } : []]);

        Assert.Equal(2, exit);
        Assert.Contains("clear text", stderr, StringComparison.Ordinal);
        Assert.Contains("https://", stderr, StringComparison.Ordinal);
    }
}

/// <summary><c>kosmos2 up</c> refuses a key the gateway would refuse, before starting anything.</summary>
public sealed class UpKeyLengthTests
{
    [Fact]
    public async Task A_short_api_key_is_a_usage_error_before_any_process_starts()
    {
        var shortKey = new string('k', Contracts.V1.ApiKeyRules.MinLength - 1);

        var (exit, _, stderr) = await CliProcess.RunAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--port", "1", "--api-key", shortKey]);

        Assert.Equal(2, exit);
        Assert.Contains($"at least {Contracts.V1.ApiKeyRules.MinLength}", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("logs in", stderr, StringComparison.Ordinal);
    }
}
