using System.Runtime.InteropServices;
using SkiaSharp;

namespace Kosmos2.Processing.Images;

/// <summary>
/// Decodes PNG, JPEG, WebP, GIF (first frame) and BMP with Skia into 8-bit RGB like PIL's
/// <c>Image.open(…).convert("RGB")</c> in the reference (KOSMOS2_SPEC.md §6 step 1): grey replicated, alpha
/// dropped without compositing, no EXIF rotation, no colour management. Anything unusable, including every Skia
/// failure, surfaces as <see cref="InvalidImageException"/>.
/// </summary>
public static class ImageDecoder
{
    private const string Accepted = "send a PNG, JPEG, WebP, GIF or BMP file";

    public static DecodedImage Decode(byte[] bytes, ImageLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Decode(bytes.AsSpan(), limits);
    }

    public static DecodedImage Decode(ReadOnlySpan<byte> bytes, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        if (bytes.IsEmpty)
        {
            throw new InvalidImageException($"image is empty (0 bytes); {Accepted}.");
        }
        if (bytes.Length > limits.MaxBytes)
        {
            throw new InvalidImageException(
                $"image is {FormatBytes(bytes.Length)}; the limit is {FormatBytes(limits.MaxBytes)}: send a smaller or more compressed file.");
        }
        try
        {
            return DecodeCore(bytes, limits);
        }
        catch (InvalidImageException)
        {
            throw;
        }
        catch (Exception ex)
        {
            // Skia and its interop may throw anything on hostile input; the caller must only ever see a client error.
            throw new InvalidImageException($"image could not be decoded ({ex.GetType().Name}: {ex.Message}); {Accepted}.", ex);
        }
    }

    private static DecodedImage DecodeCore(ReadOnlySpan<byte> bytes, ImageLimits limits)
    {
        using var data = SKData.CreateCopy(bytes);
        // SKCodec.Create reads only the header: dimensions are known before a pixel buffer exists.
        using var codec = SKCodec.Create(data)
            ?? throw new InvalidImageException(
                $"image format not recognised (first bytes {Magic(bytes)}) or the header is damaged; {Accepted}.");
        var format = MapFormat(codec.EncodedFormat);
        if (format == ImageFormats.None || (limits.AllowedFormats & format) == 0)
        {
            throw new InvalidImageException($"image format {codec.EncodedFormat} is not accepted; {Accepted}.");
        }
        var width = codec.Info.Width;
        var height = codec.Info.Height;
        if (width <= 0 || height <= 0)
        {
            throw new InvalidImageException($"image declares a size of {width}×{height}; it must be at least 1×1.");
        }
        // Both bounds come from the header, before any pixel buffer exists: they cap what one decode allocates.
        var pixels = (long)width * height;
        if (pixels > limits.MaxPixels)
        {
            throw new InvalidImageException(
                $"image is {width}×{height} = {FormatPixels(pixels)} pixels; the limit is {FormatPixels(limits.MaxPixels)}: downscale it before sending (the model sees it at {ImagePreprocessor.ImageSize}×{ImagePreprocessor.ImageSize}).");
        }
        var longSide = Math.Max(width, height);
        var shortSide = Math.Min(width, height);
        if (longSide > limits.MaxAspectRatio * shortSide)
        {
            throw new InvalidImageException(
                $"image is {width}×{height}, an aspect ratio of {FormatRatio((double)longSide / shortSide)}:1; the limit is {FormatRatio(limits.MaxAspectRatio)}:1: crop it, or split it into parts nearer to square, before sending.");
        }

        // Unpremultiplied RGBA, no colour space: colour values are the stored ones, alpha is then simply dropped.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // RGBA (4 B/px, the largest buffer of a decode: 64 MiB at 4096×4096) lives in native memory freed right after
        // the conversion; as a managed array it stayed as garbage until a full GC, adding ~190 MiB to the peak RSS of
        // two concurrent 16 MP decodes.
        var rgba = Marshal.AllocHGlobal((nint)(pixels * 4));
        try
        {
            // Frame 0 only (animated GIF/WebP): the reference uses the first frame PIL opens.
            var result = codec.GetPixels(info, rgba, info.RowBytes, new SKCodecOptions(0));
            if (result != SKCodecResult.Success)
            {
                throw new InvalidImageException(result switch
                {
                    SKCodecResult.IncompleteInput => $"image is truncated ({format} data ends early); send the complete file.",
                    SKCodecResult.ErrorInInput => $"image data is corrupt ({format} decoder reported an error); send an intact file.",
                    _ => $"image could not be decoded ({format}: {result}); {Accepted}.",
                });
            }

            var rgb = new byte[pixels * 3];
            var row = new byte[info.RowBytes];
            for (var y = 0; y < height; y++)
            {
                Marshal.Copy(rgba + ((nint)y * info.RowBytes), row, 0, row.Length);
                RgbaToRgb(row, rgb.AsSpan(y * width * 3, width * 3));
            }
            return new DecodedImage(width, height, rgb, format);
        }
        finally
        {
            Marshal.FreeHGlobal(rgba);
        }
    }

    /// <summary>Drops every fourth byte (alpha).</summary>
    internal static void RgbaToRgb(ReadOnlySpan<byte> rgba, Span<byte> rgb)
    {
        var n = rgb.Length / 3;
        for (var i = 0; i < n; i++)
        {
            var s = i * 4;
            var d = i * 3;
            rgb[d] = rgba[s];
            rgb[d + 1] = rgba[s + 1];
            rgb[d + 2] = rgba[s + 2];
        }
    }

    private static ImageFormats MapFormat(SKEncodedImageFormat format) => format switch
    {
        SKEncodedImageFormat.Png => ImageFormats.Png,
        SKEncodedImageFormat.Jpeg => ImageFormats.Jpeg,
        SKEncodedImageFormat.Webp => ImageFormats.Webp,
        SKEncodedImageFormat.Gif => ImageFormats.Gif,
        SKEncodedImageFormat.Bmp => ImageFormats.Bmp,
        _ => ImageFormats.None,
    };

    private static string Magic(ReadOnlySpan<byte> bytes) =>
        Convert.ToHexString(bytes[..Math.Min(8, bytes.Length)]);

    private static string FormatPixels(long pixels) =>
        pixels >= 1_000_000 ? $"{pixels / 1e6:0.##} M" : pixels.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string FormatRatio(double ratio) => ratio.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);

    private static string FormatBytes(long bytes) =>
        bytes >= 1024 * 1024 ? $"{bytes / (1024.0 * 1024):0.##} MiB ({bytes} bytes)" : $"{bytes} bytes";
}
