using System.Text.Json.Nodes;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>The decoder takes its model settings at their word: an unknown dtype stops it at start, and it ends a sequence on the checkpoint's own <c>eos_token_id</c>.</summary>
public sealed class ModelSourceTests
{
    [Fact]
    public async Task An_unknown_dtype_is_refused_at_start_naming_the_setting()
    {
        await using var worker = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"), new Dictionary<string, string>
        {
            ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
            ["Decoder__DType"] = "f16", // once silently bfloat16
            ["Decoder__Device"] = "cpu",
        });

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Decoder:DType", worker.RecentOutput);
        Assert.Contains("'f16'", worker.RecentOutput);
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task A_sequence_ends_on_the_eos_token_id_of_the_loaded_config()
    {
        // A copy of the golden checkpoint whose config names as end-of-sequence a token the reference generates midway.
        var prompt = GoldenPrompts.Cases().First(c => c.ExpectedNewTokens.Length >= 3);
        var stopAt = Enumerable.Range(1, prompt.ExpectedNewTokens.Length - 1)
            .First(i => Array.IndexOf(prompt.ExpectedNewTokens, prompt.ExpectedNewTokens[i]) == i);
        var eos = prompt.ExpectedNewTokens[stopAt];
        var modelDir = Directory.CreateTempSubdirectory("kosmos2-eos-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(RepoPaths.GoldenModelDir))
            {
                File.Copy(file, Path.Combine(modelDir, Path.GetFileName(file)));
            }
            var configPath = Path.Combine(modelDir, "config.json");
            var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
            config["eos_token_id"] = eos;
            config["text_config"]!["eos_token_id"] = eos;
            File.WriteAllText(configPath, config.ToJsonString());

            await using var worker = await DecoderWorkerHost.StartAsync(new Dictionary<string, string> { ["Decoder__ModelDir"] = modelDir });
            var (tokens, final, _) = await worker.GenerateAsync(prompt.ToRequest());

            Assert.Equal(prompt.ExpectedNewTokens[..(stopAt + 1)], tokens);
            Assert.Equal(DecodeFinishReason.Eos, final.FinishReason);
        }
        finally
        {
            Directory.Delete(modelDir, recursive: true);
        }
    }
}
