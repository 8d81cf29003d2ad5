using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Kosmos2.Model.Tests;

[Collection(GoldenModelCollection.Name)]
[Trait("Category", "Golden")]
public sealed class VisionGoldenTests(GoldenModelFixture fixture, ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Fact]
    public void Golden_images_exist() => Assert.NotEmpty(GoldenData.ImageNames());

    [Theory]
    [MemberData(nameof(GoldenData.Images), MemberType = typeof(GoldenData))]
    public void Vision_states_features_and_image_embeds_match_the_reference(string image)
    {
        using var scope = NewDisposeScope();
        using var file = GoldenData.ImageTensors(image);
        using var result = fixture.Model.EncodeImagesDetailed(file.Read("pixel_values"));

        var expectedHidden = file.Read("vision_hidden_states"); // [layers+1, 1, 257, Dv]
        Assert.Equal(expectedHidden.shape[0], result.HiddenStates.Count);
        var hiddenDiff = 0.0;
        for (var i = 0; i < result.HiddenStates.Count; i++)
        {
            var diff = GoldenData.MaxAbsDiff(result.HiddenStates[i], expectedHidden[i]);
            Assert.True(diff < Tolerance, $"vision hidden state {i}: max diff {diff}");
            hiddenDiff = Math.Max(hiddenDiff, diff);
        }
        var lastDiff = GoldenData.MaxAbsDiff(result.LastHiddenState, file.Read("vision_last_hidden_state"));
        var featuresDiff = GoldenData.MaxAbsDiff(result.ImageFeatures, file.Read("image_features_normalized"));
        var embedsDiff = GoldenData.MaxAbsDiff(result.ImageEmbeds, file.Read("image_embeds"));
        output.WriteLine($"{image}: hidden {hiddenDiff:E2}, last {lastDiff:E2}, features {featuresDiff:E2}, embeds {embedsDiff:E2}");

        Assert.True(lastDiff < Tolerance, $"last hidden state: {lastDiff}");
        Assert.True(featuresDiff < Tolerance, $"normalized features: {featuresDiff}");
        Assert.True(embedsDiff < Tolerance, $"image embeds: {embedsDiff}");
    }

    [Fact]
    public void Sinusoidal_table_matches_the_reference_rows()
    {
        using var scope = NewDisposeScope();
        using var file = SafetensorsFileAt("text_positions.safetensors");
        var expected = file.Read("sinusoidal_table"); // [256, D]
        var config = fixture.Model.Config.Text;
        var table = Text.Kosmos2TextSinusoidalPositionalEmbedding.MakeTable(config.MaxPositionEmbeddings + 2, config.EmbedDim, config.PadTokenId);

        var diff = GoldenData.MaxAbsDiff(table.narrow(0, 0, expected.shape[0]), expected);
        output.WriteLine($"sinusoidal table max diff {diff:E2}");
        // libtorch 2.10 and torch 1.13 differ by an ulp in exp(): ×p (up to 255) gives ~1.5e-5 in the angle.
        Assert.True(diff < 1e-4, $"table diff {diff}");
        Assert.Equal(0.0, table[1].abs().sum().item<float>());
    }

    private static Loading.SafetensorsFile SafetensorsFileAt(string relative) =>
        Loading.SafetensorsFile.Open(Path.Combine(GoldenData.Dir, relative));
}
