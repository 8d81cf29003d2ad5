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

    private static byte[] RandomRgb(int w, int h, int seed)
    {
        var rgb = new byte[w * h * 3];
        new Random(seed).NextBytes(rgb);
        return rgb;
    }
}
