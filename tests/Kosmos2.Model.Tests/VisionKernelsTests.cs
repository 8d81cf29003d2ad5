using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>
/// The vision encoder and the image-to-text projection on the native bf16 kernels (products, attention, layer norms,
/// residual adds, quick_gelu), as the vision worker serves them: an image's embeddings do not depend on the other images
/// of its batch, and stay as close to the float32 reference as libtorch's bf16.
/// </summary>
[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class VisionKernelsTests(ITestOutputHelper output)
{
    [Fact]
    public void An_images_embeddings_are_the_same_bits_encoded_alone_and_in_any_batch()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        model.UseVisionKernels(Kernels.Bf16Kernels.Best());
        var names = GoldenData.ImageNames();
        Assert.NotEmpty(names);
        var pixels = names.Select(n => { using var file = GoldenData.ImageTensors(n); return file.Read("pixel_values"); }).ToList();
        var alone = pixels.Select(p => model.EncodeImages(p)).ToList();
        // Every image twice, in reverse order: each sits at two other places of a larger batch.
        var order = Enumerable.Range(0, names.Count).Reverse().Concat(Enumerable.Range(0, names.Count)).ToArray();
        var batch = model.EncodeImages(torch.cat(order.Select(i => pixels[i]).ToArray(), 0));
        for (var place = 0; place < order.Length; place++)
        {
            Assert.True(alone[order[place]][0].contiguous().bytes.SequenceEqual(batch[place].contiguous().bytes), $"{names[order[place]]} at place {place} of {order.Length}: embeddings differ from the image encoded alone");
        }
    }

    [Fact]
    public void Native_bf16_embeddings_stay_as_close_to_the_float32_reference_as_libtorchs()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        foreach (var name in GoldenData.ImageNames())
        {
            using var file = GoldenData.ImageTensors(name);
            var reference = file.Read("image_embeds").to(ScalarType.Float32);
            var spread = (reference.max() - reference.min()).item<float>();
            model.UseVisionKernels(null);
            var torchDiff = GoldenData.MaxAbsDiff(model.EncodeImages(file.Read("pixel_values")).to(ScalarType.Float32), reference);
            model.UseVisionKernels(Kernels.Bf16Kernels.Best());
            var nativeDiff = GoldenData.MaxAbsDiff(model.EncodeImages(file.Read("pixel_values")).to(ScalarType.Float32), reference);
            output.WriteLine($"{name}: bf16 image embeds against float32, max diff native {nativeDiff:F4}, libtorch {torchDiff:F4} (spread {spread:F3})");
            // bf16's own error (libtorch's) sets the scale: the native path may round differently, not drift further.
            Assert.True(nativeDiff <= 2 * torchDiff + 0.01 * spread, $"{name}: native bf16 embeddings differ by {nativeDiff:F4}, libtorch's by {torchDiff:F4}");
        }
    }

    [Fact]
    public void Libtorch_embeddings_are_the_same_bits_before_and_after_the_native_kernels_ran()
    {
        using var scope = NewDisposeScope();
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.BFloat16, torch.CPU);
        using var file = GoldenData.ImageTensors(GoldenData.ImageNames()[0]);
        var pixels = file.Read("pixel_values");
        var before = model.EncodeImages(pixels);
        model.UseVisionKernels(Kernels.Bf16Kernels.Best()); // packs the weights in place
        var native = model.EncodeImages(pixels);
        model.UseVisionKernels(null); // restores them
        var after = model.EncodeImages(pixels);
        Assert.True(before.contiguous().bytes.SequenceEqual(after.contiguous().bytes), "libtorch's embeddings changed after the native kernels ran: a weight was not restored");
        Assert.False(native.contiguous().bytes.SequenceEqual(before.contiguous().bytes), "the native kernels did not run (their embeddings are libtorch's bits)");
    }
}
