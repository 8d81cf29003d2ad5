using Kosmos2.Model;
using Kosmos2.Model.Loading;
using Kosmos2.Processing.Tokenization;
using TorchSharp;

namespace Kosmos2.Cli;

/// <summary>
/// The checkpoint `kosmos2 up` serves without <c>--model-dir</c>: Kosmos-2's architecture shrunk to a few hundred
/// thousand random weights, with the tokenizer this project trained (TinyModel/README.md). Written once, then reused.
/// </summary>
internal static class TinyCheckpoint
{
    private const string Version = "v1";

    /// <summary>The folder, created on first use (~1 MB).</summary>
    public static string EnsureCreated()
    {
        var home = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } cache
            ? cache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var dir = Path.Combine(home, "kosmos2", "tiny-random-" + Version);
        if (File.Exists(Path.Combine(dir, "model.safetensors")))
        {
            return dir;
        }
        var staging = dir + ".partial-" + Environment.ProcessId;
        Directory.CreateDirectory(staging);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "TinyModel", "sentencepiece.bpe.model"), Path.Combine(staging, "sentencepiece.bpe.model"), overwrite: true);
        var tokenizer = Kosmos2Tokenizer.Load(staging);
        File.WriteAllText(Path.Combine(staging, "config.json"), ConfigJson(tokenizer.VocabSize));
        using (var model = Kosmos2Model.CreateRandom(Kosmos2Config.Load(Path.Combine(staging, "config.json")), torch.ScalarType.Float32, torch.CPU, seed: 20261126))
        {
            WriteSafetensors(model, Path.Combine(staging, "model.safetensors"));
        }
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
        Directory.Move(staging, dir);
        return dir;
    }

    private static string ConfigJson(int vocabSize) => $$"""
        {
          "model_type": "kosmos-2",
          "architectures": ["Kosmos2ForConditionalGeneration"],
          "latent_query_num": 64,
          "text_config": {
            "vocab_size": {{vocabSize}}, "embed_dim": 64, "layers": 2, "attention_heads": 4, "ffn_dim": 128,
            "max_position_embeddings": 2048, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2
          },
          "vision_config": {
            "hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "image_size": 224, "patch_size": 14
          }
        }
        """;

    /// <summary>Writes every parameter except the tied <c>lm_head</c> as float32 safetensors.</summary>
    private static void WriteSafetensors(Kosmos2Model model, string path)
    {
        using var scope = torch.NewDisposeScope();
        SafetensorsFile.Write(path, model.Module.state_dict()
            .Where(p => p.Key != Kosmos2ForConditionalGeneration.LmHeadKey)
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, p.Value.to(torch.ScalarType.Float32))));
    }
}
