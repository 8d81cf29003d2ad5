using System.Text.Json;

namespace Kosmos2.Cli.Tests;

/// <summary><c>kosmos2 up</c> as a process: ready, serving client commands, and leaving nothing behind on SIGTERM.</summary>
public sealed class UpCommandTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Up_serves_client_commands_that_match_the_golden_cases_and_stops_everything_on_sigterm()
    {
        var port = FreePort.Next();
        var gateway = $"127.0.0.1:{port}";
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString(), "--api-key", "secret-key-0123456789"]);

        foreach (var golden in GoldenCase.AllInEveryBoxForm())
        {
            var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--gateway", gateway, "--api-key", "secret-key-0123456789"]);
            Assert.True(exit == 0, $"{golden.Name}: {stderr}");
            golden.AssertMatches(stdout);
            using var json = JsonDocument.Parse(stdout);
            Assert.True(json.RootElement.GetProperty("timings_ms").TryGetProperty("image_cache_hit", out _));
        }

        foreach (var golden in GoldenCase.All())
        {
            // --json with --logprobs: one log-probability per new token, and a confidence (or null, from the prompt) per box.
            var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--gateway", gateway, "--api-key", "secret-key-0123456789", "--constrain-grounding", "--top-logprobs", "2"]);
            Assert.True(exit == 0, $"{golden.Name}: {stderr}");
            using var json = JsonDocument.Parse(stdout);
            var ids = json.RootElement.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(ids, json.RootElement.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
            Assert.All(json.RootElement.GetProperty("token_logprobs").EnumerateArray(), t => Assert.True(t.GetProperty("logprob").GetDouble() <= 0));
            Assert.All(json.RootElement.GetProperty("entities").EnumerateArray(),
                e => Assert.Equal(e.GetProperty("boxes").GetArrayLength(), e.GetProperty("box_logprobs").GetArrayLength()));
        }

        var refused = await CliProcess.RunAsync([.. GoldenCase.All()[0].GenerateArgs(), "--gateway", gateway, "--api-key", "wrong"]);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("UNAUTHENTICATED: ", refused.Stderr);

        var image = GoldenCase.All()[0].Image;
        var chat = await CliProcess.RunAsync(["chat", image, "--gateway", gateway, "--api-key", "secret-key-0123456789", "--json", "--max-new-tokens", "6"],
            stdin: "What is in the picture?\nWhat is <phrase>this</phrase>? --box 0.1,0.1,0.6,0.5\n");
        Assert.True(chat.ExitCode == 0, chat.Stderr);
        var turns = chat.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, turns.Length);
        foreach (var turn in turns)
        {
            using var json = JsonDocument.Parse(turn);
            Assert.StartsWith("Question:", json.RootElement.GetProperty("clean_text").GetString());
            Assert.NotEmpty(json.RootElement.GetProperty("new_token_ids").EnumerateArray());
        }
        Assert.Contains("this</phrase><object><patch_index_", JsonDocument.Parse(turns[1]).RootElement.GetProperty("decoded_text").GetString());
        // The second turn continues the first one's KV rows on the decoder (prefix reuse): at least its whole prompt.
        using (var first = JsonDocument.Parse(turns[0]))
        using (var second = JsonDocument.Parse(turns[1]))
        {
            var usage = second.RootElement.GetProperty("usage");
            var cached = usage.GetProperty("cached_prompt_tokens").GetInt32();
            Assert.InRange(cached, first.RootElement.GetProperty("input_ids").GetArrayLength(), usage.GetProperty("prompt_tokens").GetInt32() - 1);
        }

        await up.StopAndAssertCleanAsync();
    }

    [Fact]
    public async Task Up_without_a_model_serves_its_own_tiny_checkpoint_and_answers_a_caption()
    {
        var cache = Directory.CreateTempSubdirectory("kosmos2-cache-").FullName;
        try
        {
            var port = FreePort.Next();
            await using var up = await UpProcess.StartAsync(["up", "--port", port.ToString()], new Dictionary<string, string> { ["XDG_CACHE_HOME"] = cache });
            Assert.Contains("RANDOM-WEIGHT", up.Stderr);

            var (exit, stdout, stderr) = await CliProcess.RunAsync(["caption", GoldenCase.All()[0].Image, "--gateway", $"127.0.0.1:{port}", "--json", "--max-new-tokens", "5"]);

            Assert.True(exit == 0, stderr);
            using var json = JsonDocument.Parse(stdout);
            Assert.Equal(5, json.RootElement.GetProperty("new_token_ids").GetArrayLength());
            Assert.True(File.Exists(Path.Combine(cache, "kosmos2", "tiny-random-v1", "model.safetensors")));
            await up.StopAndAssertCleanAsync();
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }
}
