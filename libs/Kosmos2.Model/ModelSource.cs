using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Where a worker's weights come from and how they run: the settings both workers bind from their section
/// (<c>Decoder:*</c>, <c>Vision:*</c>; environment <c>Decoder__ModelDir</c>, …).
/// </summary>
public class ModelSourceOptions
{
    /// <summary>The checkpoint folder (a Hugging Face <c>kosmos-2-patch14-224</c> layout).</summary>
    public string ModelDir { get; set; } = "";

    /// <summary>
    /// Benchmarks and smoke tests only: build seeded random weights instead of loading <see cref="ModelDir"/>
    /// (<c>default</c> = full-size published configuration, or a config.json path or its folder). Empty: load <see cref="ModelDir"/>.
    /// </summary>
    public string RandomInit { get; set; } = "";

    /// <summary>Identity reported to clients and used in cache keys; defaults to the folder's name.</summary>
    public string ModelId { get; set; } = "";

    /// <summary>Compute dtype: <c>float32</c> (<c>fp32</c>, <c>f32</c>) or <c>bfloat16</c> (<c>bf16</c>); anything else is refused at start.</summary>
    public string DType { get; set; } = "bfloat16";

    /// <summary>Device: <c>auto</c> (CUDA when available), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Intra-op threads of libtorch; 0 = one per CPU this process may use (the container's CPU limit counts, see <see cref="TorchThreads"/>).</summary>
    public int Threads { get; set; }

    /// <summary>
    /// Who runs the bf16 products (and the decoder's attention): <c>native</c> (Kosmos2.Kernels: batch-invariant, a
    /// sequence's bits do not change with what runs beside it), <c>torch</c> (libtorch), or <c>auto</c> = native where
    /// the CPU has vector kernels (AVX512-BF16, or AVX2 with FMA). CUDA always takes torch; float32 is unaffected. See
    /// <see cref="KernelChoice"/>.
    /// </summary>
    public string Kernels { get; set; } = "auto";

    public bool IsRandom => !string.IsNullOrWhiteSpace(RandomInit);
}

/// <summary>What was loaded: reported by GetInfo and part of the embedding cache keys.</summary>
/// <param name="Fingerprint">Tells checkpoints apart without hashing gigabytes (see <see cref="ModelSource"/>).</param>
public sealed record ModelSourceIdentity(string ModelId, string Fingerprint, string DType, string Device);

/// <summary>The dtype names accepted in configuration and on the command line.</summary>
public static class ModelDTypes
{
    public static ScalarType Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"Unknown dtype '{name}': use float32 or bfloat16."),
    };

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Kosmos-2 runs in float32 or bfloat16."),
    };
}

/// <summary>
/// The one way the workers and the CLI turn <see cref="ModelSourceOptions"/> into a model: checked at start-up,
/// loaded with progress, named the same way everywhere (so the two workers agree on cache keys).
/// </summary>
public static class ModelSource
{
    /// <summary>Same random-init name + same seed = same weights in every process.</summary>
    public const long RandomSeed = 1234;

    /// <summary>Refuses settings that cannot load, at start-up, naming the setting to fix (<paramref name="section"/>: <c>Decoder</c>, <c>Vision</c>).</summary>
    public static void Validate(ModelSourceOptions options, string section)
    {
        if (string.IsNullOrWhiteSpace(options.ModelDir) && !options.IsRandom)
        {
            throw new InvalidOperationException($"{section}:ModelDir is not set: point it at a kosmos-2-patch14-224 checkpoint folder (environment {section}__ModelDir), or set {section}:RandomInit for random weights.");
        }
        try
        {
            ModelDTypes.Parse(options.DType);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"{section}:DType: {ex.Message}", ex);
        }
    }

    /// <summary>The warning every process with random weights logs.</summary>
    public static string RandomWeightsWarning(ModelSourceOptions options, string section) =>
        $"RANDOM WEIGHTS: {section}:RandomInit = '{options.RandomInit.Trim()}' builds a seeded random model instead of loading {section}:ModelDir; its output is meaningless (benchmarks and smoke tests only).";

    /// <summary>Loads <paramref name="parts"/> of the checkpoint (or builds random weights) on this thread, which then owns the model.</summary>
    public static (Kosmos2Model Model, ModelSourceIdentity Identity) Load(ModelSourceOptions options, Kosmos2Parts parts, IProgress<string>? progress)
    {
        var dtype = ModelDTypes.Parse(options.DType);
        var device = Kosmos2Checkpoint.ChooseDevice(options.Device);
        var randomInit = options.RandomInit.Trim();
        var model = options.IsRandom
            ? Kosmos2Model.CreateRandom(RandomConfig(randomInit), dtype, device, RandomSeed)
            : Kosmos2Model.Load(options.ModelDir, dtype, device, progress, parts);
        var identity = new ModelSourceIdentity(
            !string.IsNullOrEmpty(options.ModelId) ? options.ModelId
                : options.IsRandom ? RandomModelId(randomInit)
                : FolderName(options.ModelDir),
            options.IsRandom ? RandomFingerprint(randomInit) : CheckpointFingerprint(options.ModelDir),
            ModelDTypes.Name(dtype),
            device.ToString());
        return (model, identity);
    }

    private static bool IsDefault(string randomInit) => string.Equals(randomInit, "default", StringComparison.OrdinalIgnoreCase);

    private static Kosmos2Config RandomConfig(string randomInit) => IsDefault(randomInit) ? Kosmos2Config.Default : Kosmos2Config.Load(randomInit);

    private static string ConfigFile(string randomInit) => Directory.Exists(randomInit) ? Path.Combine(randomInit, "config.json") : randomInit;

    private static string FolderName(string path) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));

    /// <summary><c>random-default</c>, or <c>random-</c> + the folder holding the config.</summary>
    private static string RandomModelId(string randomInit) =>
        IsDefault(randomInit) ? "random-default" : "random-" + FolderName(Path.GetDirectoryName(Path.GetFullPath(ConfigFile(randomInit)))!);

    /// <summary>Over the configuration's text and the seed: another config or seed is another cache namespace.</summary>
    private static string RandomFingerprint(string randomInit)
    {
        var text = IsDefault(randomInit) ? "default" : File.ReadAllText(ConfigFile(randomInit));
        return "rnd" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{text}\n{RandomSeed}")))[..13];
    }

    /// <summary>SHA-256 over config.json, the weights index (or the single file's first MiB and size).</summary>
    private static string CheckpointFingerprint(string modelDir)
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
