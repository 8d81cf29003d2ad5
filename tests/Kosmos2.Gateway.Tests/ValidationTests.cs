using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Validation;

namespace Kosmos2.Gateway.Tests;

/// <summary>Request checks name the field and the limit.</summary>
public sealed class ValidationTests
{
    private static readonly GatewayOptions Options = new();

    [Fact]
    public void An_oversized_image_names_the_field_the_size_and_the_setting()
    {
        var image = new Image { Data = ByteString.CopyFrom(new byte[25 * 1024 * 1024]) };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateImage(image, Options));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("image.data is 25 MB; the limit is 20 MB (Gateway:MaxImageBytes).", ex.Status.Detail);
    }

    [Fact]
    public void An_image_needs_data_or_a_well_formed_hash()
    {
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => RequestValidator.ValidateImage(new Image(), Options)).StatusCode);
        Assert.Throws<RpcException>(() => RequestValidator.ValidateImage(new Image { Sha256 = new string('A', 64) }, Options));
        RequestValidator.ValidateImage(new Image { Sha256 = new string('a', 64) }, Options);
    }

    [Theory]
    [InlineData(0.5, 0.1, 0.4, 0.9, BoxFrame.Normalized, "x2 must be > x1")]
    [InlineData(0.1, 0.5, 0.4, 0.5, BoxFrame.Unspecified, "y2 must be > y1")]
    [InlineData(0.1, 0.1, 1.2, 0.5, BoxFrame.Normalized, "outside [0, 1]")]
    [InlineData(10, 10, 700, 50, BoxFrame.Pixels, "outside the 640×480 image")]
    [InlineData(-1, 10, 70, 50, BoxFrame.Pixels, "starts outside the image")]
    public void Bad_boxes_are_rejected_with_their_path(double x1, double y1, double x2, double y2, BoxFrame frame, string why)
    {
        var regions = new[] { new Region { Phrase = "a dog", Frame = frame, Boxes = { new Box { X1 = x1, Y1 = y1, X2 = x2, Y2 = y2 } } } };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateRegions(regions, Options, 640, 480));

        Assert.Contains("regions[0].boxes[0]", ex.Status.Detail);
        Assert.Contains(why, ex.Status.Detail);
    }

    [Theory]
    [InlineData(1024u, 5u, "regions[0].boxes[0].patch (1024, 5) names a cell outside the grid: cells are 0…1023.")]
    [InlineData(5u, 4000u, "regions[0].boxes[0].patch (5, 4000) names a cell outside the grid: cells are 0…1023.")]
    [InlineData(40u, 39u, "regions[0].boxes[0].patch (40, 39): the top-left cell (row 1, column 8) is below or right of the bottom-right cell (row 1, column 7); cells are numbered row by row, 32 per row.")]
    [InlineData(64u, 31u, "regions[0].boxes[0].patch (64, 31): the top-left cell (row 2, column 0) is below or right of the bottom-right cell (row 0, column 31); cells are numbered row by row, 32 per row.")]
    public void Bad_patch_boxes_name_the_field_and_the_rule(uint topLeft, uint bottomRight, string message)
    {
        var regions = new[] { new Region { Phrase = "a dog", Boxes = { new Box { Patch = new PatchIndexBox { TopLeft = topLeft, BottomRight = bottomRight } } } } };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateRegions(regions, Options, 640, 480));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal(message, ex.Status.Detail);
    }

    [Fact]
    public void A_patch_box_with_coordinates_too_is_refused()
    {
        var regions = new[] { new Region { Boxes = { new Box { X2 = 0.5, Y2 = 0.5, Patch = new PatchIndexBox { TopLeft = 0, BottomRight = 33 } } } } };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateRegions(regions, Options));

        Assert.Equal("regions[0].boxes[0] has both coordinates (0, 0, 0.5, 0.5) and a patch: give one or the other.", ex.Status.Detail);
    }

    [Fact]
    public void Patch_boxes_at_the_grid_edges_and_regions_without_boxes_are_accepted()
    {
        RequestValidator.ValidateRegions(
            [
                new Region { Phrase = "all", Boxes = { new Box { Patch = new PatchIndexBox { TopLeft = 0, BottomRight = 1023 } } } },
                new Region { Phrase = "one cell", Boxes = { new Box { Patch = new PatchIndexBox { TopLeft = 1023, BottomRight = 1023 } } } },
                new Region { Phrase = "one column", Boxes = { new Box { Patch = new PatchIndexBox { TopLeft = 31, BottomRight = 1023 } } } },
                new Region { Phrase = "no box" },
            ],
            Options, 640, 480);
    }

    [Fact]
    public void Good_boxes_and_too_many_regions()
    {
        var region = new Region { Phrase = "a dog", Frame = BoxFrame.Pixels, Boxes = { new Box { X1 = 0, Y1 = 0, X2 = 640, Y2 = 480 } } };
        RequestValidator.ValidateRegions([region], Options, 640, 480);

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateRegions(Enumerable.Repeat(region, 17).ToArray(), Options, 640, 480));
        Assert.Equal("regions is 17 regions; the limit is 16 (Gateway:MaxRegions).", ex.Status.Detail);
    }

    [Theory]
    [InlineData(-0.1f, 0f, 0u, 1f, "temperature")]
    [InlineData(2.5f, 0f, 0u, 1f, "temperature")]
    [InlineData(float.NaN, 0f, 0u, 1f, "temperature")]
    [InlineData(1f, 1.5f, 0u, 1f, "top_p")]
    [InlineData(1f, 0.9f, 70000u, 1f, "top_k")]
    [InlineData(1f, 0.9f, 50u, -1f, "repetition_penalty")]
    public void Sampling_out_of_range_names_the_field(float temperature, float topP, uint topK, float penalty, string field)
    {
        var sampling = new SamplingParameters { Temperature = temperature, TopP = topP, TopK = topK, RepetitionPenalty = penalty };

        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateSampling(sampling, Options, vocabSize: 65037));

        Assert.Contains("sampling." + field, ex.Status.Detail);
    }

    [Fact]
    public void Max_new_tokens_defaults_and_is_capped()
    {
        Assert.Equal(128, RequestValidator.ValidateStopping(null, Options));
        Assert.Equal(300, RequestValidator.ValidateStopping(new StoppingParameters { MaxNewTokens = 300 }, Options));
        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateStopping(new StoppingParameters { MaxNewTokens = 513 }, Options));
        Assert.Equal("stopping.max_new_tokens is 513; the limit is 512 (Gateway:MaxNewTokens).", ex.Status.Detail);
    }

    [Fact]
    public void A_long_prompt_names_the_limit()
    {
        var ex = Assert.Throws<RpcException>(() => RequestValidator.ValidateText(new string('x', 2001), "prompt", Options));
        Assert.Equal("prompt is 2001 characters; the limit is 2000 characters (Gateway:MaxPromptChars).", ex.Status.Detail);
    }
}
