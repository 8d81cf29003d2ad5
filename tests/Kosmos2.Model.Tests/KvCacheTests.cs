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
