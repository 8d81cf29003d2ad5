using System.Globalization;
using System.Text.Json;
using Kosmos2.Model.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Loads a HF <c>kosmos-2-patch14-224</c> folder: <c>config.json</c> plus <c>model.safetensors</c> or a sharded
/// <c>model.safetensors.index.json</c>. Strict: every module parameter must be in the files with its shape, and the
/// files may hold nothing else except the tied <c>text_model.lm_head.weight</c>. The module is first built on the
/// meta device (no memory, no random init), then each parameter is read, converted to the target dtype and moved to
/// the device one tensor at a time (peak ≈ model + one float32 tensor).
/// </summary>
public static class Kosmos2Checkpoint
{
    /// <summary>"cuda" when a GPU is usable, else "cpu"; or the device named by <paramref name="requested"/> ("auto" = choose).</summary>
    public static Device ChooseDevice(string? requested = null) =>
        string.IsNullOrWhiteSpace(requested) || requested.Equals("auto", StringComparison.OrdinalIgnoreCase)
            ? (torch.cuda.is_available() ? torch.CUDA : torch.CPU)
            : torch.device(requested);

    public static Kosmos2Model Load(string directory, ScalarType dtype, Device device, IProgress<string>? progress = null,
        Kosmos2Parts parts = Kosmos2Parts.All)
    {
        var config = Kosmos2Config.Load(Path.Combine(directory, "config.json"));
        var files = OpenFiles(directory);
        try
        {
            using var noGrad = torch.no_grad();
            var module = new Kosmos2ForConditionalGeneration(config, torch.META, dtype);
            try
            {
                LoadInto(module, files, dtype, device, progress, parts);
                return new Kosmos2Model(module, dtype, device);
            }
            catch
            {
                module.Dispose();
                throw;
            }
        }
        finally
        {
            foreach (var file in files.Values.Distinct())
            {
                file.Dispose();
            }
        }
    }

    /// <summary>Key → the open file holding it (one file, or the shards of an index).</summary>
    private static Dictionary<string, SafetensorsFile> OpenFiles(string directory)
    {
        var index = Path.Combine(directory, "model.safetensors.index.json");
        var single = Path.Combine(directory, "model.safetensors");
        var byKey = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        if (File.Exists(index))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var entry in doc.RootElement.GetProperty("weight_map").EnumerateObject())
            {
                var shard = entry.Value.GetString() ?? throw new InvalidDataException($"{index}: no file for {entry.Name}.");
                if (!opened.TryGetValue(shard, out var file))
                {
                    file = SafetensorsFile.Open(Path.Combine(directory, shard));
                    opened[shard] = file;
                }
                byKey[entry.Name] = file;
            }
            return byKey;
        }
        if (!File.Exists(single))
        {
            throw new FileNotFoundException($"{directory} has neither model.safetensors nor model.safetensors.index.json.", single);
        }
        var only = SafetensorsFile.Open(single);
        foreach (var key in only.Entries.Keys)
        {
            byKey[key] = only;
        }
        return byKey;
    }

    private static void LoadInto(Kosmos2ForConditionalGeneration module, Dictionary<string, SafetensorsFile> files,
        ScalarType dtype, Device device, IProgress<string>? progress, Kosmos2Parts parts)
    {
        var owners = module.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var all = module.named_parameters()
            .Where(p => p.name != Kosmos2ForConditionalGeneration.LmHeadKey)
            .Select(p => (p.name, shape: p.parameter.shape))
            .ToList();
        var expectedNames = all.Select(e => e.name).ToHashSet(StringComparer.Ordinal);
        // Parts not asked for stay on the meta device: no memory, and any use of them fails loudly.
        var expected = all.Where(e => (PartOf(e.name) & parts) != 0).ToList();
        var unexpected = files.Keys.Where(k => !expectedNames.Contains(k) && k != Kosmos2ForConditionalGeneration.LmHeadKey).ToList();
        var missing = expected.Where(e => !files.ContainsKey(e.name)).Select(e => e.name).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
        {
            throw new InvalidDataException(
                $"Checkpoint does not match the model: missing [{string.Join(", ", missing.Take(10))}]{(missing.Count > 10 ? "…" : "")}, " +
                $"unexpected [{string.Join(", ", unexpected.Take(10))}]{(unexpected.Count > 10 ? "…" : "")}.");
        }

        var totalBytes = expected.Sum(e => files[e.name].Entries[e.name].ByteLength);
        long doneBytes = 0;
        var nextReport = 0.0;
        progress?.Report($"loading {expected.Count} tensors ({totalBytes / 1e9:F2} GB) as {dtype} on {device}");
        for (var i = 0; i < expected.Count; i++)
        {
            var (name, shape) = expected[i];
            var file = files[name];
            var entry = file.Entries[name];
            if (!entry.Shape.SequenceEqual(shape))
            {
                throw new InvalidDataException(
                    $"{name}: checkpoint shape [{string.Join(", ", entry.Shape)}], model expects [{string.Join(", ", shape)}].");
            }
            using (var scope = NewDisposeScope())
            {
                var tensor = file.Read(name, dtype, device);
                var parameter = new Parameter(tensor.DetachFromDisposeScope(), requires_grad: false);
                var cut = name.LastIndexOf('.');
                SetParameter(owners[name[..cut]], name[(cut + 1)..], parameter);
            }
            doneBytes += entry.ByteLength;
            var fraction = (double)doneBytes / totalBytes;
            if (fraction >= nextReport || i == expected.Count - 1)
            {
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"loaded {i + 1}/{expected.Count} tensors, {doneBytes / 1e9:F2}/{totalBytes / 1e9:F2} GB ({fraction:P0})"));
                nextReport = Math.Floor(fraction * 10 + 1) / 10;
            }
        }
        if ((parts & Kosmos2Parts.Text) != 0)
        {
            module.TextModel.TieWeights();
        }
    }

    private static Kosmos2Parts PartOf(string name) =>
        name.StartsWith("text_model.", StringComparison.Ordinal) ? Kosmos2Parts.Text : Kosmos2Parts.Vision;

    /// <summary>Replaces the meta placeholder <paramref name="leaf"/> of <paramref name="owner"/> by the loaded parameter.</summary>
    private static void SetParameter(nn.Module owner, string leaf, Parameter value)
    {
        switch (owner, leaf)
        {
            case (Linear l, "weight"):
                l.weight = value;
                break;
            case (Linear l, "bias"):
                l.bias = value;
                break;
            case (LayerNorm n, "weight"):
                n.weight = value;
                break;
            case (LayerNorm n, "bias"):
                n.bias = value;
                break;
            case (Embedding e, "weight"):
                e.weight = value;
                break;
            case (Convolution c, "weight"):
                c.weight = value;
                break;
            case (Convolution c, "bias"):
                c.bias = value;
                break;
            case (IParameterOwner o, _):
                o.SetParameter(leaf, value);
                break;
            default:
                throw new InvalidOperationException($"Don't know how to set '{leaf}' on {owner.GetType().Name}.");
        }
    }
}

/// <summary>
/// Which parts of the checkpoint to load. The vision worker needs only the vision encoder and the projection
/// (≈ 0.6 GB in bfloat16 instead of 3.3 GB); the decoder worker only the text model.
/// </summary>
[Flags]
public enum Kosmos2Parts
{
    /// <summary><c>vision_model.*</c> and <c>image_to_text_projection.*</c>.</summary>
    Vision = 1,

    /// <summary><c>text_model.*</c>.</summary>
    Text = 2,

    All = Vision | Text,
}
