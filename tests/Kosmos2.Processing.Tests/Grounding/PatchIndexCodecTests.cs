using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Tests.Grounding;

public sealed class PatchIndexCodecTests
{
    public static TheoryData<int> EncodeCases() => GoldenJson.IndexData("bbox_cases.json", "coordinate_to_patch_index");

    public static TheoryData<int> DecodeCases() => GoldenJson.IndexData("bbox_cases.json", "patch_index_to_coordinate");

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(EncodeCases))]
    public void Encode_matches_coordinate_to_patch_index(int index)
    {
        var c = GoldenJson.Load("bbox_cases.json").GetProperty("coordinate_to_patch_index")[index];
        var box = GoldenJson.Box(c.GetProperty("box"));
        var (ul, lr) = PatchIndexCodec.Encode(box, c.GetProperty("num_patches_per_side").GetInt32());
        Assert.Equal(c.GetProperty("patch_indices")[0].GetInt32(), ul);
        Assert.Equal(c.GetProperty("patch_indices")[1].GetInt32(), lr);
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(DecodeCases))]
    public void Decode_matches_patch_index_to_coordinate(int index)
    {
        var c = GoldenJson.Load("bbox_cases.json").GetProperty("patch_index_to_coordinate")[index];
        var box = PatchIndexCodec.Decode(
            c.GetProperty("patch_indices")[0].GetInt32(), c.GetProperty("patch_indices")[1].GetInt32(), c.GetProperty("num_patches_per_side").GetInt32());
        Assert.Equal(GoldenJson.Box(c.GetProperty("box")), box);
    }

    [Fact]
    public void Spec_examples()
    {
        Assert.Equal((291, 786), PatchIndexCodec.Encode(new NormalizedBox(0.12, 0.31, 0.58, 0.77)));
        Assert.Equal(new NormalizedBox(0.109375, 0.296875, 0.578125, 0.765625), PatchIndexCodec.Decode(291, 786));
        Assert.Equal(new NormalizedBox(0.390625, 0.046875, 0.984375, 0.828125), PatchIndexCodec.Decode(44, 863));
        Assert.Equal("<patch_index_0044>", PatchIndexCodec.TokenText(44));
    }

    [Theory]
    [InlineData(0.5, 0.5, 0.5, 0.6)]
    [InlineData(0.5, 0.5, 0.4, 0.6)]
    [InlineData(0.1, 0.5, 0.4, 0.5)]
    [InlineData(double.NaN, 0.1, 0.4, 0.5)]
    public void Unordered_boxes_are_rejected(double x1, double y1, double x2, double y2) =>
        Assert.Throws<ArgumentException>(() => PatchIndexCodec.Encode(new NormalizedBox(x1, y1, x2, y2)));

    [Fact]
    public void Pixel_helpers_round_trip()
    {
        var px = new PixelBox(32, 24, 320, 240);
        var n = PatchIndexCodec.Normalize(px, 320, 240);
        Assert.Equal(new NormalizedBox(0.1, 0.1, 1.0, 1.0), n);
        Assert.Equal(px, PatchIndexCodec.ToPixels(n, 320, 240));
    }
}
