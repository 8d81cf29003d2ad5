using System.Text.Json;

namespace Kosmos2.Model;

/// <summary>
/// Text decoder hyper-parameters (HF <c>Kosmos2TextConfig</c>). Defaults are the published model's (SPEC §1.1),
/// used for every key absent from <c>config.json</c>.
/// </summary>
public sealed record Kosmos2TextConfig
{
    public int VocabSize { get; init; } = 65037;
    public int EmbedDim { get; init; } = 2048;
    public int Layers { get; init; } = 24;
    public int AttentionHeads { get; init; } = 32;
    public int FfnDim { get; init; } = 8192;
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public string ActivationFunction { get; init; } = "gelu";
    public double LayerNormEps { get; init; } = 1e-5;
    public bool ScaleEmbedding { get; init; } = true;
    public int PadTokenId { get; init; } = 1;
    public int BosTokenId { get; init; }
    public int EosTokenId { get; init; } = 2;

    /// <summary>Size of one attention head (64 in every published configuration).</summary>
    public int HeadDim => EmbedDim / AttentionHeads;
}

/// <summary>CLIP vision tower hyper-parameters (HF <c>Kosmos2VisionConfig</c>), defaults of SPEC §1.1.</summary>
public sealed record Kosmos2VisionConfig
{
    public int HiddenSize { get; init; } = 1024;
    public int IntermediateSize { get; init; } = 4096;
    public int NumHiddenLayers { get; init; } = 24;
    public int NumAttentionHeads { get; init; } = 16;
    public int NumChannels { get; init; } = 3;
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 14;
    public string HiddenAct { get; init; } = "quick_gelu";
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Patches per image (256 at 224/14).</summary>
    public int NumPatches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>Patches plus the class token (257).</summary>
    public int NumPositions => NumPatches + 1;

    public int HeadDim => HiddenSize / NumAttentionHeads;
}

/// <summary>
/// The checkpoint's <c>config.json</c> (HF <c>Kosmos2Config</c>): nested text/vision objects, the text aliases
/// (<c>hidden_size</c>, <c>num_hidden_layers</c>, <c>num_attention_heads</c>), defaults for absent keys, unknown keys
/// ignored, null top-level token ids taken from the text config.
/// </summary>
public sealed record Kosmos2Config
{
    public Kosmos2TextConfig Text { get; init; } = new();
    public Kosmos2VisionConfig Vision { get; init; } = new();
    public int LatentQueryNum { get; init; } = 64;
    public int BosTokenId { get; init; }
    public int EosTokenId { get; init; } = 2;
    public int PadTokenId { get; init; } = 1;

    /// <summary>The full-size published configuration (<c>microsoft/kosmos-2-patch14-224</c>).</summary>
    public static Kosmos2Config Default { get; } = new();

    /// <summary>Reads <paramref name="path"/> (a <c>config.json</c> file or the folder holding it).</summary>
    public static Kosmos2Config Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        return Parse(File.ReadAllText(file));
    }

    /// <summary>Parses the text of a HF <c>config.json</c>.</summary>
    public static Kosmos2Config Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var textDefaults = new Kosmos2TextConfig();
        var visionDefaults = new Kosmos2VisionConfig();
        var t = Child(root, "text_config");
        var v = Child(root, "vision_config");

        var text = new Kosmos2TextConfig
        {
            VocabSize = Int(t, textDefaults.VocabSize, "vocab_size"),
            EmbedDim = Int(t, textDefaults.EmbedDim, "embed_dim", "hidden_size"),
            Layers = Int(t, textDefaults.Layers, "layers", "num_hidden_layers"),
            AttentionHeads = Int(t, textDefaults.AttentionHeads, "attention_heads", "num_attention_heads"),
            FfnDim = Int(t, textDefaults.FfnDim, "ffn_dim"),
            MaxPositionEmbeddings = Int(t, textDefaults.MaxPositionEmbeddings, "max_position_embeddings"),
            ActivationFunction = Str(t, textDefaults.ActivationFunction, "activation_function"),
            LayerNormEps = Dbl(t, textDefaults.LayerNormEps, "layer_norm_eps"),
            ScaleEmbedding = Bool(t, textDefaults.ScaleEmbedding, "scale_embedding"),
            PadTokenId = Int(t, textDefaults.PadTokenId, "pad_token_id"),
            BosTokenId = Int(t, textDefaults.BosTokenId, "bos_token_id"),
            EosTokenId = Int(t, textDefaults.EosTokenId, "eos_token_id"),
        };
        var vision = new Kosmos2VisionConfig
        {
            HiddenSize = Int(v, visionDefaults.HiddenSize, "hidden_size"),
            IntermediateSize = Int(v, visionDefaults.IntermediateSize, "intermediate_size"),
            NumHiddenLayers = Int(v, visionDefaults.NumHiddenLayers, "num_hidden_layers"),
            NumAttentionHeads = Int(v, visionDefaults.NumAttentionHeads, "num_attention_heads"),
            NumChannels = Int(v, visionDefaults.NumChannels, "num_channels"),
            ImageSize = Int(v, visionDefaults.ImageSize, "image_size"),
            PatchSize = Int(v, visionDefaults.PatchSize, "patch_size"),
            HiddenAct = Str(v, visionDefaults.HiddenAct, "hidden_act"),
            LayerNormEps = Dbl(v, visionDefaults.LayerNormEps, "layer_norm_eps"),
        };
        if (text.EmbedDim % text.AttentionHeads != 0 || vision.HiddenSize % vision.NumAttentionHeads != 0)
        {
            throw new InvalidDataException("config.json: the hidden size must be a multiple of the number of heads.");
        }
        return new Kosmos2Config
        {
            Text = text,
            Vision = vision,
            LatentQueryNum = Int(root, 64, "latent_query_num"),
            BosTokenId = Int(root, text.BosTokenId, "bos_token_id"),
            EosTokenId = Int(root, text.EosTokenId, "eos_token_id"),
            PadTokenId = Int(root, text.PadTokenId, "pad_token_id"),
        };
    }

    private static JsonElement? Child(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var c) && c.ValueKind == JsonValueKind.Object
            ? c
            : null;

    /// <summary>The first of <paramref name="names"/> present with a non-null value.</summary>
    private static JsonElement? Find(JsonElement? obj, string[] names)
    {
        if (obj is not { ValueKind: JsonValueKind.Object } o)
        {
            return null;
        }
        foreach (var name in names)
        {
            if (o.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                return value;
            }
        }
        return null;
    }

    private static int Int(JsonElement? obj, int fallback, params string[] names) =>
        Find(obj, names) is { } e ? (int)e.GetDouble() : fallback;

    private static double Dbl(JsonElement? obj, double fallback, params string[] names) =>
        Find(obj, names) is { } e ? e.GetDouble() : fallback;

    private static string Str(JsonElement? obj, string fallback, params string[] names) =>
        Find(obj, names) is { ValueKind: JsonValueKind.String } e ? e.GetString() ?? fallback : fallback;

    private static bool Bool(JsonElement? obj, bool fallback, params string[] names) =>
        Find(obj, names) is { } e && e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : fallback;
}
