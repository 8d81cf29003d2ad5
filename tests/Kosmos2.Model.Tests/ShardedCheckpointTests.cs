using System.Text.Json;
using System.Text.Json.Nodes;
using Kosmos2.Model.Loading;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// The published 1.6B checkpoint may come as shards (<c>model.safetensors.index.json</c> + <c>model-0000k-of-0000n.safetensors</c>,
/// as <c>save_pretrained</c> writes them past its shard size). The golden checkpoint is split the same way here, and
/// the sharded folder must load to the very same weights and logits.
/// </summary>
[Collection(GoldenModelCollection.Name)]
public sealed class ShardedCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("kosmos2-sharded-").FullName;

    [Fact]
    [Trait("Category", "Golden")]
    public void A_sharded_folder_loads_the_same_weights_and_logits_as_the_single_file()
    {
        foreach (var file in Directory.GetFiles(RepoPaths.GoldenModelDir).Where(f => Path.GetFileName(f) != "model.safetensors"))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }
        var shardOf = SplitIntoShards(Path.Combine(RepoPaths.GoldenModelDir, "model.safetensors"), _folder, shards: 3);
        Assert.Equal(3, shardOf.Values.Distinct().Count());

        using var single = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.Float32, CPU);
        using var sharded = Kosmos2Model.Load(_folder, ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        var expected = single.Module.state_dict();
        var actual = sharded.Module.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.shape, actual[name].shape);
            Assert.True(tensor.eq(actual[name]).all().item<bool>(), $"{name} differs after the sharded load");
        }

        long[] prompt = [0, 5, 6, 7, 8, 9, 10, 11];
        using var cacheA = single.CreateKvCache(1, prompt.Length);
        using var cacheB = sharded.CreateKvCache(1, prompt.Length);
        Assert.True(single.Prefill(cacheA, 0, prompt).eq(sharded.Prefill(cacheB, 0, prompt)).all().item<bool>());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// Splits a safetensors file into <paramref name="shards"/> files by tensor (each in its stored dtype) and writes
    /// the index with its weight_map, as Hugging Face lays them out. Returns tensor name → shard file name.
    /// </summary>
    private static Dictionary<string, string> SplitIntoShards(string source, string folder, int shards)
    {
        using var scope = NewDisposeScope();
        using var file = SafetensorsFile.Open(source);
        var names = file.Entries.Keys.Order(StringComparer.Ordinal).ToList();
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var s = 0; s < shards; s++)
        {
            var fileName = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var members = names.Where((_, i) => i % shards == s).ToList();
            SafetensorsFile.Write(Path.Combine(folder, fileName), members.Select(name => KeyValuePair.Create(name, file.Read(name))));
            members.ForEach(name => shardOf[name] = fileName);
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = file.Entries.Values.Sum(e => e.ByteLength) },
            ["weight_map"] = new JsonObject(shardOf.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        };
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return shardOf;
    }
}
