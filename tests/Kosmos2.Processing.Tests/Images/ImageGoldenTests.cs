using Kosmos2.Processing.Images;
using Kosmos2.Testing;

namespace Kosmos2.Processing.Tests.Images;

/// <summary>Every golden <c>images/*.png</c> with a <c>.safetensors</c> sibling: resized pixels and pixel_values bit-exact.</summary>
public sealed class ImageGoldenTests
{
    public static TheoryData<string> GoldenImages()
    {
        var dir = Path.Combine(RepoPaths.GoldenDir, "images");
        var data = new TheoryData<string>();
        foreach (var png in Directory.GetFiles(dir, "*.png").Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.ChangeExtension(png, ".safetensors")))
            {
                data.Add(Path.GetFileName(png));
            }
        }
        if (data.Count == 0)
        {
            throw new InvalidOperationException($"no golden images/*.png with a .safetensors sibling under {dir}");
        }
        return data;
    }

    [Fact]
    [Trait("Category", "Golden")]
    public void Golden_images_are_found() => Assert.NotEmpty(GoldenImages());

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(GoldenImages))]
    public void Resized_pixels_and_pixel_values_equal_the_reference_exactly(string image)
    {
        var png = Path.Combine(RepoPaths.GoldenDir, "images", image);
        var expected = new SafetensorsReader(Path.ChangeExtension(png, ".safetensors"));

        var decoded = ImageDecoder.Decode(File.ReadAllBytes(png));
        var result = ImagePreprocessor.Preprocess(decoded);

        Assert.Equal([224, 224, 3], expected.Shape("resized_rgb_uint8"));
        var resized = expected.UInt8("resized_rgb_uint8");
        var firstResized = FirstDifference(resized, result.ResizedRgb);
        Assert.True(firstResized < 0, $"resized_rgb_uint8 differs first at flat index {firstResized}: expected {(firstResized < 0 ? 0 : resized[firstResized])}, got {(firstResized < 0 ? 0 : result.ResizedRgb[firstResized])}");

        Assert.Equal([1, 3, 224, 224], expected.Shape("pixel_values"));
        var pixels = expected.Float32("pixel_values");
        Assert.Equal(pixels.Length, result.PixelValues.Length);
        for (var i = 0; i < pixels.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(pixels[i]) != BitConverter.SingleToInt32Bits(result.PixelValues[i]))
            {
                Assert.Fail($"pixel_values differ first at flat index {i}: expected {pixels[i]:R}, got {result.PixelValues[i]:R}");
            }
        }

        // The batch path stacks the same values.
        var batch = ImagePreprocessor.PreprocessBatch([decoded, decoded]);
        Assert.Equal(pixels, batch.AsSpan(0, pixels.Length).ToArray());
        Assert.Equal(pixels, batch.AsSpan(pixels.Length).ToArray());
    }

    private static int FirstDifference(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        var i = a.AsSpan().CommonPrefixLength(b);
        return i == a.Length ? -1 : i;
    }
}
