using Kosmos2.Processing.Images;

namespace Kosmos2.Processing.Tests.Images;

public sealed class PillowBicubicTests
{
    [Fact]
    public void Same_size_is_a_copy()
    {
        var rgb = RandomRgb(7, 5, 1);
        Assert.Equal(rgb, PillowBicubic.Resize(rgb, 7, 5, 7, 5));
    }

    [Theory]
    [InlineData(10, 10, 224, 224)]
    [InlineData(640, 480, 224, 224)]
    [InlineData(224, 300, 224, 224)]
    [InlineData(300, 224, 224, 224)]
    [InlineData(3, 1000, 224, 224)]
    public void Constant_images_stay_constant(int w, int h, int ow, int oh)
    {
        var rgb = new byte[w * h * 3];
        for (var i = 0; i < rgb.Length; i += 3)
        {
            (rgb[i], rgb[i + 1], rgb[i + 2]) = ((byte)17, (byte)128, (byte)255);
        }
        var outRgb = PillowBicubic.Resize(rgb, w, h, ow, oh);
        for (var i = 0; i < outRgb.Length; i += 3)
        {
            Assert.Equal((17, 128, 255), (outRgb[i], outRgb[i + 1], outRgb[i + 2]));
        }
    }

    [Theory]
    [InlineData(40, 1_000_000)]
    [InlineData(1, 4_000_000)]
    [InlineData(640, 480)]
    public void Intermediate_size_is_computed_in_long(int w, int h)
    {
        // Downscaling to 224 reads every source row: 224 columns × h rows × 3, past int.MaxValue for h over 3.2 M.
        Assert.Equal(224L * h * 3, PillowBicubic.IntermediateBytes(w, h, 224, 224));
        Assert.Equal(0, PillowBicubic.IntermediateBytes(w, h, w, 224));
    }

    [Theory]
    [InlineData(4_000_000)] // 224·h·3 wraps to a negative int
    [InlineData(6_392_000)] // wraps to a small positive int: a 456 KB buffer for 4.3 GB of rows
    public void Too_large_an_intermediate_is_refused_naming_the_sizes_not_overflowed(int h)
    {
        var rgb = new byte[h * 3];
        var ex = Assert.Throws<ArgumentException>(() => PillowBicubic.Resize(rgb, 1, h, 224, 224));
        Assert.Contains($"1×{h} to 224×224", ex.Message, StringComparison.Ordinal);
        Assert.Contains((224L * h * 3).ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
    }

    private static byte[] RandomRgb(int w, int h, int seed)
    {
        var rgb = new byte[w * h * 3];
        new Random(seed).NextBytes(rgb);
        return rgb;
    }
}
