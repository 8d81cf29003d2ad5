using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

[Collection(GoldenModelCollection.Name)]
public sealed class KvCacheTests(GoldenModelFixture fixture)
{
    [Fact]
    public void Cache_is_preallocated_per_layer_and_steps_leave_no_live_tensors()
    {
        var model = fixture.Model;
        var text = model.Config.Text;
        using var cache = model.CreateKvCache(3, 100);
        var (keys, values) = cache.Layer(0);
        Assert.Equal(new long[] { 3, text.AttentionHeads, 100, text.HeadDim }, keys.shape);
        Assert.Equal(keys.shape, values.shape);
        Assert.Equal(2L * text.Layers * 3 * 100 * text.EmbedDim * 4, cache.Bytes);

        long[] prompt = [0, 5, 6, 7, 8];
        using (var scope = NewDisposeScope())
        {
            model.Prefill(cache, 1, prompt); // warm-up allocations of lazily built state
        }
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var scope = NewDisposeScope())
        {
            model.Prefill(cache, 1, prompt);
            model.DecodeStep(cache, [1, 2], [9, 9], [5, 0]);
        }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(6, cache.Length(1));
    }

    [Fact]
    public void Copying_a_prefix_gives_the_target_slot_the_source_rows_and_touches_nothing_else()
    {
        var model = fixture.Model;
        using var cache = model.CreateKvCache(3, 16);
        using (var scope = NewDisposeScope())
        {
            model.Prefill(cache, 0, [0, 5, 6, 7, 8, 9]);
            model.Prefill(cache, 2, [0, 9, 8, 7]);
        }
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        cache.CopyPrefix(0, 1, 4);

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(4, cache.Length(1));
        using var check = NewDisposeScope();
        for (var layer = 0; layer < cache.Layers; layer++)
        {
            var (keys, values) = cache.Layer(layer);
            Assert.True(keys[1].narrow(1, 0, 4).equal(keys[0].narrow(1, 0, 4)).all().item<bool>());
            Assert.True(values[1].narrow(1, 0, 4).equal(values[0].narrow(1, 0, 4)).all().item<bool>());
            Assert.Equal(0, keys[1].narrow(1, 4, 12).abs().sum().item<float>()); // past the prefix: untouched
            Assert.False(keys[2].narrow(1, 0, 4).equal(keys[0].narrow(1, 0, 4)).all().item<bool>());
        }
    }

    [Fact]
    public void Overflowing_a_slot_is_a_clear_error()
    {
        using var scope = NewDisposeScope();
        using var cache = fixture.Model.CreateKvCache(1, 4);
        var error = Assert.Throws<InvalidOperationException>(() => fixture.Model.Prefill(cache, 0, [0, 5, 6, 7, 8]));
        Assert.Contains("KV cache overflow", error.Message);
    }

    [Fact]
    public void Checkpoint_folder_without_weights_is_rejected()
    {
        var dir = Directory.CreateTempSubdirectory("kosmos2-empty-").FullName;
        try
        {
            File.Copy(Path.Combine(RepoPaths.GoldenModelDir, "config.json"), Path.Combine(dir, "config.json"));
            Assert.Throws<FileNotFoundException>(() => Kosmos2Model.Load(dir, ScalarType.Float32, torch.CPU));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
