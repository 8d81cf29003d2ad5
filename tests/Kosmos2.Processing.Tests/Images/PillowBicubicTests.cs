using System.Diagnostics;
using Kosmos2.Processing.Images;
using Xunit.Abstractions;

namespace Kosmos2.Processing.Tests.Images;

public sealed class PillowBicubicTests(ITestOutputHelper output)
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

    [Fact]
    public void Resize_640x480_to_224_is_fast()
    {
        var rgb = RandomRgb(640, 480, 2);
        for (var i = 0; i < 5; i++)
        {
            PillowBicubic.Resize(rgb, 640, 480, 224, 224);
        }
        var times = new List<double>();
        for (var i = 0; i < 30; i++)
        {
            var sw = Stopwatch.StartNew();
            PillowBicubic.Resize(rgb, 640, 480, 224, 224);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        var median = times[times.Count / 2];
        output.WriteLine($"640x480 -> 224x224 Pillow bicubic: median {median:0.00} ms, min {times[0]:0.00} ms (30 runs)");
        // Target < 10 ms optimised (measured ~5 ms in Release on a loaded 2-core box). Debug builds are ~5x slower and
        // machines are shared, so the bound only catches an algorithmic regression, not noise.
#if DEBUG
        const double bound = 250;
#else
        const double bound = 40;
#endif
        Assert.True(median < bound, $"median {median:0.00} ms");
    }

    private static byte[] RandomRgb(int w, int h, int seed)
    {
        var rgb = new byte[w * h * 3];
        new Random(seed).NextBytes(rgb);
        return rgb;
    }
}
