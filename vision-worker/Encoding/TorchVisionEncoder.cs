using System.Security.Cryptography;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.VisionWorker.Encoding;

/// <summary>CLIP ViT + Kosmos-2 projection on TorchSharp. Lives on the encoder thread: created, used and disposed there.</summary>
public sealed class TorchVisionEncoder : IVisionEncoder
{
    private const int PixelsPerImage = 3 * 224 * 224;
    private readonly Kosmos2Model _model;

    private TorchVisionEncoder(Kosmos2Model model, ModelIdentity identity)
    {
        _model = model;
        Identity = identity;
        Rows = model.Config.LatentQueryNum;
        Columns = model.Config.Text.EmbedDim;
        OutputDType = model.DType == ScalarType.BFloat16 ? TensorDType.Bfloat16 : TensorDType.Float32;
    }

    public int Rows { get; }

    public int Columns { get; }

    public TensorDType OutputDType { get; }

    public ModelIdentity Identity { get; }

    /// <summary>
    /// Loads the checkpoint folder in <paramref name="dtype"/> on <paramref name="device"/> ("auto", "cpu", "cuda"), or,
    /// with <paramref name="randomInit"/> set (<c>default</c> or a config.json path), builds seeded random weights instead.
    /// </summary>
    public static TorchVisionEncoder Load(string modelDir, string modelId, string dtype, string device, IProgress<string>? progress, string randomInit = "")
    {
        var scalarType = EmbeddingDTypesForTorch.Parse(dtype);
        var chosen = Kosmos2Checkpoint.ChooseDevice(device);
        var random = !string.IsNullOrWhiteSpace(randomInit);
        Kosmos2Model model;
        if (random)
        {
            model = Kosmos2Model.CreateRandom(RandomInitConfig.Resolve(randomInit), scalarType, chosen, seed: RandomInitConfig.Seed);
        }
        else
        {
            model = Kosmos2Model.Load(modelDir, scalarType, chosen, progress, Kosmos2Parts.Vision);
        }
        var identity = new ModelIdentity
        {
            ModelId = !string.IsNullOrEmpty(modelId) ? modelId
                : random ? RandomInitConfig.ModelId(randomInit)
                : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir))),
            Fingerprint = random ? RandomInitConfig.Fingerprint(randomInit) : Fingerprint(modelDir),
            Dtype = scalarType == ScalarType.BFloat16 ? "bfloat16" : "float32",
            Device = chosen.ToString(),
        };
        return new TorchVisionEncoder(model, identity);
    }

    public byte[][] Encode(IReadOnlyList<float[]> pixelValues)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var batch = new float[pixelValues.Count * PixelsPerImage];
        for (var i = 0; i < pixelValues.Count; i++)
        {
            pixelValues[i].AsSpan().CopyTo(batch.AsSpan(i * PixelsPerImage, PixelsPerImage));
        }
        var input = torch.tensor(batch, [pixelValues.Count, 3, 224, 224]);
        var embeds = _model.EncodeImages(input).to(torch.CPU).contiguous(); // [B, 64, D]
        var outputs = new byte[pixelValues.Count][];
        for (var i = 0; i < pixelValues.Count; i++)
        {
            outputs[i] = embeds[i].contiguous().bytes.ToArray();
        }
        return outputs;
    }

    public void Dispose() => _model.Dispose();

    /// <summary>
    /// Tells checkpoints apart in cache keys without hashing gigabytes: SHA-256 over config.json, the weights
    /// index (or the single file's header and size).
    /// </summary>
    private static string Fingerprint(string modelDir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var name in new[] { "config.json", "model.safetensors.index.json" })
        {
            var path = Path.Combine(modelDir, name);
            if (File.Exists(path))
            {
                sha.AppendData(File.ReadAllBytes(path));
            }
        }
        var weights = Path.Combine(modelDir, "model.safetensors");
        if (File.Exists(weights))
        {
            using var stream = File.OpenRead(weights);
            var head = new byte[Math.Min(1 << 20, stream.Length)];
            stream.ReadExactly(head);
            sha.AppendData(head);
            sha.AppendData(BitConverter.GetBytes(stream.Length));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }
}

/// <summary>Configuration dtype names → TorchSharp scalar types.</summary>
internal static class EmbeddingDTypesForTorch
{
    public static ScalarType Parse(string dtype) => dtype.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"Unknown dtype '{dtype}': use float32 or bfloat16."),
    };
}

/// <summary>
/// <c>Vision:RandomInit</c>: <c>default</c> = the full-size published configuration, anything else = a config.json path
/// (or its folder). Same name + same seed = same weights, so workers agree on cache keys.
/// </summary>
internal static class RandomInitConfig
{
    public const long Seed = 1234;

    public static Kosmos2Config Resolve(string name) =>
        string.Equals(name.Trim(), "default", StringComparison.OrdinalIgnoreCase) ? Kosmos2Config.Default : Kosmos2Config.Load(name.Trim());

    public static string ModelId(string name) =>
        string.Equals(name.Trim(), "default", StringComparison.OrdinalIgnoreCase) ? "random-default" : "random-" + Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(ConfigFile(name))));

    /// <summary>Over the configuration's text and the seed: another config or seed is another cache namespace.</summary>
    public static string Fingerprint(string name)
    {
        var text = string.Equals(name.Trim(), "default", StringComparison.OrdinalIgnoreCase) ? "default" : File.ReadAllText(ConfigFile(name));
        return "rnd" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{text}\n{Seed}")))[..13];
    }

    private static string ConfigFile(string name) => Directory.Exists(name.Trim()) ? Path.Combine(name.Trim(), "config.json") : name.Trim();
}
