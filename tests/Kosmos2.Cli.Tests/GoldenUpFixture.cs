using System.Text.Json.Nodes;

namespace Kosmos2.Cli.Tests;

/// <summary>One <c>kosmos2 up</c> on the golden checkpoint (float32) for the batch and eval tests, and a scratch folder.</summary>
public sealed class GoldenUpFixture : IAsyncLifetime
{
    private UpProcess? _up;

    public string Gateway { get; private set; } = "";

    public string Scratch { get; } = Directory.CreateTempSubdirectory("kosmos2-batch-test-").FullName;

    /// <summary>The golden images, each once, in path order.</summary>
    public static IReadOnlyList<string> Images => GoldenCase.All().Select(c => c.Image).Distinct().Order(StringComparer.Ordinal).ToList();

    public async Task InitializeAsync()
    {
        var port = FreePort.Next();
        Gateway = $"127.0.0.1:{port}";
        _up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString(), "--api-key", "secret-key-0123456789"]);
    }

    public async Task DisposeAsync()
    {
        if (_up is not null)
        {
            await _up.StopAndAssertCleanAsync();
            await _up.DisposeAsync();
        }
        Directory.Delete(Scratch, recursive: true);
    }

    /// <summary>
    /// A result object without what differs from run to run (timings; how much of the prompt the decoder's prefix cache
    /// held, which depends on what ran before) or names the input (a batch line's head).
    /// </summary>
    public static string Comparable(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        foreach (var name in new[] { "id", "image", "task", "status", "timings_ms" })
        {
            node.Remove(name);
        }
        (node["usage"] as JsonObject)?.Remove("cached_prompt_tokens");
        return node.ToJsonString();
    }
}

[CollectionDefinition(Name)]
public sealed class GoldenUpCollection : ICollectionFixture<GoldenUpFixture>
{
    public const string Name = "golden kosmos2 up";
}
