using System.Text.Json;
using Kosmos2.Model.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>Finds the golden folders dynamically (a new folder of the same layout is checked with no code change).</summary>
public static class GoldenData
{
    public static string Dir => RepoPaths.GoldenDir;

    /// <summary>Every <c>images/*.safetensors</c>, by file stem.</summary>
    public static IReadOnlyList<string> ImageNames() =>
        Directory.EnumerateFiles(Path.Combine(Dir, "images"), "*.safetensors")
            .Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToList();

    /// <summary>Every <c>cases/*/case.json</c>, by folder name.</summary>
    public static IReadOnlyList<string> CaseNames() => Folders("cases", "case.json");

    /// <summary>Every <c>batches/*/batch.json</c>, by folder name.</summary>
    public static IReadOnlyList<string> BatchNames() => Folders("batches", "batch.json");

    public static TheoryData<string> Images() => ToTheory(ImageNames());

    public static TheoryData<string> Cases() => ToTheory(CaseNames());

    public static TheoryData<string> Batches() => ToTheory(BatchNames());

    public static JsonElement CaseJson(string name) => ReadJson(Path.Combine(Dir, "cases", name, "case.json"));

    public static JsonElement BatchJson(string name) => ReadJson(Path.Combine(Dir, "batches", name, "batch.json"));

    public static SafetensorsFile ImageTensors(string name) => SafetensorsFile.Open(Path.Combine(Dir, "images", name + ".safetensors"));

    public static SafetensorsFile CaseTensors(string name) => SafetensorsFile.Open(Path.Combine(Dir, "cases", name, "tensors.safetensors"));

    public static SafetensorsFile BatchTensors(string name) => SafetensorsFile.Open(Path.Combine(Dir, "batches", name, "tensors.safetensors"));

    /// <summary>The image stem named by a case/batch row (<c>"images/shapes_a_320x240.png"</c> → <c>shapes_a_320x240</c>).</summary>
    public static string ImageStem(JsonElement row) => Path.GetFileNameWithoutExtension(row.GetProperty("image").GetString()!);

    public static long[] Longs(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(b.shape, a.shape);
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    /// <summary>Index of the first 1 of an image_embeds_position_mask; asserts the ones are one contiguous run.</summary>
    public static int ImageOffset(long[] mask, int expectedCount)
    {
        var first = Array.IndexOf(mask, 1L);
        Assert.True(first >= 0, "no image positions");
        Assert.Equal(expectedCount, mask.Count(m => m == 1));
        Assert.All(mask.Skip(first).Take(expectedCount), m => Assert.Equal(1L, m));
        return first;
    }

    private static List<string> Folders(string parent, string file)
    {
        var root = Path.Combine(Dir, parent);
        return Directory.Exists(root)
            ? Directory.EnumerateDirectories(root).Where(d => File.Exists(Path.Combine(d, file)))
                .Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList()
            : [];
    }

    private static TheoryData<string> ToTheory(IEnumerable<string> names)
    {
        var data = new TheoryData<string>();
        foreach (var name in names)
        {
            data.Add(name);
        }
        return data;
    }

    private static JsonElement ReadJson(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }
}

/// <summary>The golden checkpoint loaded once in float32 on the CPU, shared by the numeric tests (run one at a time).</summary>
public sealed class GoldenModelFixture : IDisposable
{
    private readonly Dictionary<string, Tensor> _imageEmbeds = new(StringComparer.Ordinal);

    public GoldenModelFixture()
    {
        torch.set_num_threads(Math.Max(1, Math.Min(Environment.ProcessorCount, 4)));
        Model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.Float32, torch.CPU);
    }

    public Kosmos2Model Model { get; }

    /// <summary>image_embeds [1, 64, D] of a golden image computed by our model from its golden pixel values (cached).</summary>
    public Tensor ImageEmbeds(string imageStem)
    {
        if (!_imageEmbeds.TryGetValue(imageStem, out var embeds))
        {
            using var scope = NewDisposeScope();
            using var file = GoldenData.ImageTensors(imageStem);
            embeds = Model.EncodeImages(file.Read("pixel_values")).DetachFromDisposeScope();
            _imageEmbeds[imageStem] = embeds;
        }
        return embeds;
    }

    public void Dispose()
    {
        foreach (var t in _imageEmbeds.Values)
        {
            t.Dispose();
        }
        Model.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class GoldenModelCollection : ICollectionFixture<GoldenModelFixture>
{
    public const string Name = "Golden model (float32, CPU)";
}
