namespace Kosmos2.Processing.Images;

/// <summary>One image after preprocessing: the model input and the resized pixels it came from.</summary>
public sealed class PreprocessedImage
{
    internal PreprocessedImage(float[] pixelValues, byte[] resizedRgb)
    {
        PixelValues = pixelValues;
        ResizedRgb = resizedRgb;
    }

    /// <summary>CHW float32 [3, 224, 224], rescaled and CLIP-normalised.</summary>
    public float[] PixelValues { get; }

    /// <summary>HWC uint8 [224, 224, 3] after the Pillow bicubic resize (the golden <c>resized_rgb_uint8</c>).</summary>
    public byte[] ResizedRgb { get; }
}

/// <summary>
/// <c>CLIPImageProcessor</c> with Kosmos-2's config (KOSMOS2_SPEC.md §6): square 224×224 Pillow BICUBIC resize
/// ignoring the aspect ratio, (no-op) centre crop, rescale in float64 then float32, normalise in float32, CHW.
/// </summary>
public static class ImagePreprocessor
{
    public const int ImageSize = 224;

    /// <summary>Floats per image in <c>pixel_values</c>.</summary>
    public const int PixelValuesPerImage = 3 * ImageSize * ImageSize;

    /// <summary>
    /// Identifies this exact pixel pipeline in cache keys: bump it whenever any output value could change
    /// (resize, rescale, mean/std, decoding rules).
    /// </summary>
    public const string PreprocessingVersion = "kosmos2-clip224-pillow-bicubic-rgbdropalpha-v1";

    private const double RescaleFactor = 0.00392156862745098;

    private static readonly double[] ImageMean = [0.48145466, 0.4578275, 0.40821073];
    private static readonly double[] ImageStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>[channel·256 + value] → normalised float: there are only 768 distinct outputs, so compute them once.</summary>
    private static readonly float[] Lookup = BuildLookup();

    public static PreprocessedImage Preprocess(DecodedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var resized = PillowBicubic.Resize(image.Rgb, image.Width, image.Height, ImageSize, ImageSize);
        var pixels = new float[PixelValuesPerImage];
        Normalize(resized, pixels);
        return new PreprocessedImage(pixels, resized);
    }

    /// <summary>Writes one image's CHW pixel values into <paramref name="destination"/> (3·224·224 floats).</summary>
    public static void Preprocess(DecodedImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        var resized = PillowBicubic.Resize(image.Rgb, image.Width, image.Height, ImageSize, ImageSize);
        Normalize(resized, destination);
    }

    /// <summary>Stacks a batch: [B, 3, 224, 224] float32, row-major.</summary>
    public static float[] PreprocessBatch(IReadOnlyList<DecodedImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var batch = new float[images.Count * PixelValuesPerImage];
        for (var i = 0; i < images.Count; i++)
        {
            Preprocess(images[i], batch.AsSpan(i * PixelValuesPerImage, PixelValuesPerImage));
        }
        return batch;
    }

    /// <summary>HWC uint8 224×224 → CHW normalised floats.</summary>
    public static void Normalize(ReadOnlySpan<byte> resizedRgb, Span<float> destination)
    {
        const int plane = ImageSize * ImageSize;
        if (resizedRgb.Length != plane * 3 || destination.Length < plane * 3)
        {
            throw new ArgumentException($"expected {plane * 3} resized bytes and room for {plane * 3} floats.");
        }
        var r = destination[..plane];
        var g = destination.Slice(plane, plane);
        var b = destination.Slice(2 * plane, plane);
        var lut = Lookup.AsSpan();
        for (var i = 0; i < plane; i++)
        {
            r[i] = lut[resizedRgb[i * 3]];
            g[i] = lut[256 + resizedRgb[(i * 3) + 1]];
            b[i] = lut[512 + resizedRgb[(i * 3) + 2]];
        }
    }

    private static float[] BuildLookup()
    {
        var table = new float[3 * 256];
        for (var c = 0; c < 3; c++)
        {
            var mean = (float)ImageMean[c];
            var std = (float)ImageStd[c];
            for (var v = 0; v < 256; v++)
            {
                // numpy: image.astype(float64) * scale → astype(float32); then (x - float32 mean) / float32 std.
                var rescaled = (float)(v * RescaleFactor);
                table[(c * 256) + v] = (rescaled - mean) / std;
            }
        }
        return table;
    }
}
