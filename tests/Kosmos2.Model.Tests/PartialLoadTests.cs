using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

/// <summary>Loading only the vision side (what the vision worker does) gives the same image embeddings and leaves the text model unallocated.</summary>
[Collection(GoldenModelCollection.Name)]
public sealed class PartialLoadTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public void A_vision_only_load_encodes_like_the_full_model_and_allocates_no_text_weights()
    {
        using var full = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.Float32, CPU);
        using var vision = Kosmos2Model.Load(RepoPaths.GoldenModelDir, ScalarType.Float32, CPU, parts: Kosmos2Parts.Vision);
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        var pixels = torch.randn(1, 3, 224, 224);

        var expected = full.EncodeImages(pixels);
        var actual = vision.EncodeImages(pixels);

        Assert.Equal(0.0, (expected - actual).abs().max().item<float>());
        Assert.All(vision.Module.named_parameters().Where(p => p.name.StartsWith("text_model.", StringComparison.Ordinal)),
            p => Assert.Equal(DeviceType.META, p.parameter.device_type));
        Assert.All(vision.Module.named_parameters().Where(p => !p.name.StartsWith("text_model.", StringComparison.Ordinal)),
            p => Assert.Equal(DeviceType.CPU, p.parameter.device_type));
    }
}
