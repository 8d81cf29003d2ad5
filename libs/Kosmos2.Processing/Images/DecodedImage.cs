namespace Kosmos2.Processing.Images;

/// <summary>An 8-bit RGB image, row-major HWC (<c>Rgb[(y·Width + x)·3 + c]</c>), as PIL's <c>convert("RGB")</c> gives it.</summary>
public sealed class DecodedImage
{
    public DecodedImage(int width, int height, byte[] rgb, ImageFormats sourceFormat = ImageFormats.None)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(rgb);
        if (rgb.LongLength != (long)width * height * 3)
        {
            throw new ArgumentException($"rgb holds {rgb.LongLength} bytes; a {width}×{height} RGB image needs {(long)width * height * 3}.", nameof(rgb));
        }
        Width = width;
        Height = height;
        Rgb = rgb;
        SourceFormat = sourceFormat;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Row-major HWC uint8 pixels, 3 bytes per pixel, no row padding.</summary>
    public byte[] Rgb { get; }

    /// <summary>The encoded format it came from (<see cref="ImageFormats.None"/> when built from raw pixels).</summary>
    public ImageFormats SourceFormat { get; }
}
