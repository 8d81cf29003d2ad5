using System.Buffers.Binary;
using System.IO.Compression;
using Kosmos2.Processing.Images;
using Kosmos2.Testing;

namespace Kosmos2.Processing.Tests.Images;

/// <summary>Every input is either served as PIL's <c>convert("RGB")</c> would, or refused with <see cref="InvalidImageException"/>.</summary>
public sealed class ImageDecoderTests
{
    private static string Fixture(string name) =>
        Path.Combine(RepoPaths.RepoRoot, "tests", "Kosmos2.Processing.Tests", "Fixtures", name);

    private static byte[] FixtureBytes(string name) => File.ReadAllBytes(Fixture(name));

    private static byte[] GoldenPng() =>
        File.ReadAllBytes(Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "images"), "*.png").Order(StringComparer.Ordinal).First());

    private static InvalidImageException Refused(byte[] bytes, ImageLimits? limits = null)
    {
        // Assert.Throws demands this exact type: any other exception (Skia's included) fails the test.
        return Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(bytes, limits));
    }

    [Fact]
    public void Empty_input_is_refused()
    {
        var ex = Refused([]);
        Assert.Contains("empty", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not an image at all, just text")]
    [InlineData("GIF87")]
    public void Wrong_magic_bytes_are_refused(string text)
    {
        var ex = Refused(System.Text.Encoding.ASCII.GetBytes(text));
        Assert.Contains("not recognised", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Png_signature_followed_by_garbage_is_refused()
    {
        byte[] bytes = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        Refused(bytes);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.1)]
    public void Truncated_png_is_refused(double keep)
    {
        var png = GoldenPng();
        Refused(png[..(int)(png.Length * keep)]);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.8)]
    [InlineData(0.05)]
    public void Truncated_jpeg_is_refused(double keep)
    {
        var jpeg = FixtureBytes("rgb_40x30.jpg");
        Refused(jpeg[..(int)(jpeg.Length * keep)]);
    }

    [Fact]
    public void Huge_declared_dimensions_are_refused_from_the_header_alone()
    {
        // A valid PNG header declaring 100000×100000 with a tiny IDAT: decoding it would need 40 GB.
        var ex = Refused(CraftPng(100_000, 100_000));
        Assert.Contains("100000×100000", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"the limit is {ImageLimits.DefaultMaxPixels / 1e6:0.##} M", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pixel_limit_is_configurable_and_message_names_the_numbers()
    {
        var ex = Refused(FixtureBytes("rgb_40x30.bmp"), new ImageLimits { MaxPixels = 1000 });
        Assert.Equal(
            $"image is 40×30 = 1200 pixels; the limit is 1000: downscale it before sending (the model sees it at {ImagePreprocessor.ImageSize}×{ImagePreprocessor.ImageSize}).",
            ex.Message);
    }

    [Theory]
    [InlineData(40, 1_000_000)]
    [InlineData(40, 100_000)]
    [InlineData(100_000, 40)]
    public void Tall_or_wide_image_is_refused_from_the_header_before_any_pixel_buffer(int width, int height)
    {
        // A ~100 KB PNG can declare these sizes; decoding 40×1,000,000 used to allocate 280 MB plus a 672 MB resize buffer.
        var bytes = CraftPng(width, height);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Refused(bytes);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < (long)width * height, $"{allocated} bytes allocated before refusing a {width}×{height} image");
        Assert.Contains($"{width}×{height}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("the limit is", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Aspect_ratio_over_the_limit_is_refused_naming_ratio_and_limit()
    {
        var limits = ImageLimits.Default;
        var height = 4;
        var width = (int)(height * limits.MaxAspectRatio) + 1;
        Assert.True((long)width * height <= limits.MaxPixels);
        var ex = Refused(TestImages.RandomPng(width, height, seed: 1));
        var ratio = ((double)width / height).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);
        var limit = limits.MaxAspectRatio.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"image is {width}×{height}, an aspect ratio of {ratio}:1; the limit is {limit}:1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("crop", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Aspect_ratio_limit_is_configurable()
    {
        var png = TestImages.RandomPng(30, 10, seed: 2);
        Assert.Equal(30, ImageDecoder.Decode(png, new ImageLimits { MaxAspectRatio = 3 }).Width);
        Refused(png, new ImageLimits { MaxAspectRatio = 2.9 });
    }

    [Fact]
    public void Image_at_the_aspect_limit_and_a_10_to_1_panorama_decode_and_preprocess()
    {
        var height = 4;
        var atLimit = ImageDecoder.Decode(TestImages.RandomPng((int)(height * ImageLimits.DefaultMaxAspectRatio), height, seed: 3));
        Assert.Equal(height, atLimit.Height);
        Assert.Equal(ImagePreprocessor.PixelValuesPerImage, ImagePreprocessor.Preprocess(atLimit).PixelValues.Length);
        foreach (var (w, h) in new[] { (2240, 224), (224, 2240) })
        {
            var panorama = ImageDecoder.Decode(TestImages.RandomPng(w, h, seed: 4));
            Assert.Equal((w, h), (panorama.Width, panorama.Height));
            Assert.Equal(ImagePreprocessor.PixelValuesPerImage, ImagePreprocessor.Preprocess(panorama).PixelValues.Length);
        }
    }

    [Fact]
    public void Image_just_over_the_default_pixel_limit_is_refused_from_the_header()
    {
        var side = (int)Math.Sqrt(ImageLimits.DefaultMaxPixels);
        var ex = Refused(CraftPng(side + 1, side + 1));
        Assert.Contains($"image is {side + 1}×{side + 1}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("downscale", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_bytes_bound_covers_buffers_and_resize_intermediate_of_the_tallest_accepted_image()
    {
        var limits = ImageLimits.Default;
        var longSide = (int)limits.MaxLongSide;
        var shortSide = (int)Math.Ceiling(longSide / limits.MaxAspectRatio);
        Assert.True((long)longSide * shortSide <= limits.MaxPixels + longSide);
        var intermediate = PillowBicubic.IntermediateBytes(shortSide, longSide, ImagePreprocessor.ImageSize, ImagePreprocessor.ImageSize);
        Assert.True(limits.DecodeBytesBound >= limits.MaxBytes + (7 * limits.MaxPixels) + intermediate);
    }

    [Fact]
    public void Byte_limit_is_checked_before_decoding()
    {
        var ex = Refused(FixtureBytes("rgb_40x30.bmp"), new ImageLimits { MaxBytes = 100 });
        Assert.Contains("the limit is 100 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Disallowed_format_is_refused()
    {
        var ex = Refused(FixtureBytes("rgb_40x30.bmp"), new ImageLimits { AllowedFormats = ImageFormats.Png | ImageFormats.Jpeg });
        Assert.Contains("not accepted", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Zero_size_png_is_refused()
    {
        Refused(CraftPng(0, 10));
        Refused(CraftPng(10, 0));
    }

    [Fact]
    public void One_by_one_png_decodes_and_preprocesses()
    {
        var image = ImageDecoder.Decode(FixtureBytes("one_1x1.png"));
        Assert.Equal((1, 1), (image.Width, image.Height));
        Assert.Equal([0x0a, 0x14, 0x1e], image.Rgb);
        var p = ImagePreprocessor.Preprocess(image);
        // Upscaling a constant image keeps it constant.
        Assert.All(Enumerable.Range(0, 224 * 224), i => Assert.Equal([0x0a, 0x14, 0x1e], p.ResizedRgb.AsSpan(i * 3, 3).ToArray()));
    }

    [Fact]
    public void Grayscale_is_replicated_to_rgb()
    {
        var image = ImageDecoder.Decode(FixtureBytes("gray_40x30.png"));
        Assert.Equal(ImageFormats.Png, image.SourceFormat);
        for (var i = 0; i < image.Width * image.Height; i++)
        {
            Assert.Equal(image.Rgb[i * 3], image.Rgb[(i * 3) + 1]);
            Assert.Equal(image.Rgb[i * 3], image.Rgb[(i * 3) + 2]);
        }
        // Row 15 of the white→black gradient as ImageMagick stored it.
        Assert.Equal(0x7b, image.Rgb[15 * 40 * 3]);
    }

    [Fact]
    public void Alpha_is_dropped_without_compositing()
    {
        var image = ImageDecoder.Decode(FixtureBytes("rgba_40x30.png"));
        // Stored (200,100,50) at alpha 0.25: the colour is kept as stored, not blended with any background.
        Assert.Equal([200, 100, 50], Pixel(image, 20, 20));
        Assert.Equal([10, 20, 30], Pixel(image, 0, 0));
        var transparent = ImageDecoder.Decode(FixtureBytes("transparent_2x1.png"));
        Assert.Equal([255, 0, 0], Pixel(transparent, 1, 0));
    }

    [Fact]
    public void Animated_gif_gives_its_first_frame()
    {
        var image = ImageDecoder.Decode(FixtureBytes("animated_20x10.gif"));
        Assert.Equal((20, 10, ImageFormats.Gif), (image.Width, image.Height, image.SourceFormat));
        Assert.All(Enumerable.Range(0, 200), i => Assert.Equal([255, 0, 0], image.Rgb.AsSpan(i * 3, 3).ToArray()));
    }

    [Fact]
    public void Sixteen_bit_png_decodes_to_8_bit_rgb()
    {
        var image = ImageDecoder.Decode(FixtureBytes("rgb16_40x30.png"));
        Assert.Equal((40, 30), (image.Width, image.Height));
        // Stored 0x1010,0x2020,0x3030 top and 0xf0f0,0xe0e0,0xd0d0 bottom: 8-bit values within one level of the high byte.
        AssertNear([0x10, 0x20, 0x30], Pixel(image, 0, 0), 1);
        AssertNear([0xf0, 0xe0, 0xd0], Pixel(image, 0, 29), 1);
    }

    [Fact]
    public void Cmyk_jpeg_decodes_to_rgb()
    {
        var image = ImageDecoder.Decode(FixtureBytes("cmyk_40x30.jpg"));
        Assert.Equal((40, 30, ImageFormats.Jpeg), (image.Width, image.Height, image.SourceFormat));
        // A red→blue gradient: red on top, blue at the bottom (JPEG is lossy, so only roughly).
        var top = Pixel(image, 20, 0);
        var bottom = Pixel(image, 20, 29);
        Assert.True(top[0] > 200 && top[2] < 60, $"top {string.Join(',', top)}");
        Assert.True(bottom[2] > 200 && bottom[0] < 60, $"bottom {string.Join(',', bottom)}");
    }

    [Theory]
    [InlineData("rgb_40x30.jpg", ImageFormats.Jpeg)]
    [InlineData("rgb_40x30.bmp", ImageFormats.Bmp)]
    [InlineData("rgb_40x30.webp", ImageFormats.Webp)]
    public void Other_formats_decode(string file, ImageFormats format)
    {
        var image = ImageDecoder.Decode(FixtureBytes(file));
        Assert.Equal((40, 30, format), (image.Width, image.Height, image.SourceFormat));
        var top = Pixel(image, 20, 0);
        Assert.True(top[0] > 200 && top[2] < 60, $"top {string.Join(',', top)}");
        Assert.Equal(3 * 224 * 224, ImagePreprocessor.Preprocess(image).PixelValues.Length);
    }

    [Fact]
    public void Random_corruptions_of_a_png_are_served_or_refused_never_thrown_otherwise()
    {
        var png = GoldenPng();
        var random = new Random(1234);
        for (var i = 0; i < 200; i++)
        {
            var bytes = (byte[])png.Clone();
            for (var k = 0; k < 1 + random.Next(8); k++)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }
            try
            {
                var image = ImageDecoder.Decode(bytes);
                Assert.Equal((long)image.Width * image.Height * 3, image.Rgb.LongLength);
            }
            catch (InvalidImageException)
            {
            }
        }
    }

    private static byte[] Pixel(DecodedImage image, int x, int y) => image.Rgb.AsSpan(((y * image.Width) + x) * 3, 3).ToArray();

    private static void AssertNear(byte[] expected, byte[] actual, int tolerance)
    {
        for (var c = 0; c < 3; c++)
        {
            Assert.True(Math.Abs(expected[c] - actual[c]) <= tolerance, $"channel {c}: expected {expected[c]}±{tolerance}, got {actual[c]}");
        }
    }

    /// <summary>A well-formed 8-bit RGB PNG header for any declared size, with one tiny (wrong-size) IDAT.</summary>
    private static byte[] CraftPng(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        TestImages.WritePngChunk(ms, "IHDR", ihdr);
        using (var z = new MemoryStream())
        {
            using (var deflate = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                deflate.Write(new byte[4096]);
            }
            TestImages.WritePngChunk(ms, "IDAT", z.ToArray());
        }
        TestImages.WritePngChunk(ms, "IEND", []);
        return ms.ToArray();
    }
}
