namespace Kosmos2.Processing.Images;

/// <summary>Encoded image formats the decoder accepts.</summary>
[Flags]
public enum ImageFormats
{
    None = 0,
    Png = 1,
    Jpeg = 2,
    Webp = 4,
    Gif = 8,
    Bmp = 16,
    All = Png | Jpeg | Webp | Gif | Bmp,
}

/// <summary>
/// What a request may send. Checked before any pixel is decoded, so a small file declaring a huge
/// canvas (a decompression bomb) is refused after reading its header only.
/// </summary>
public sealed record ImageLimits
{
    public const long DefaultMaxBytes = 20L * 1024 * 1024;
    public const long DefaultMaxPixels = 40_000_000;

    /// <summary>The defaults: 20 MiB encoded, 40 M decoded pixels, PNG/JPEG/WebP/GIF/BMP.</summary>
    public static ImageLimits Default { get; } = new();

    /// <summary>Largest encoded size in bytes.</summary>
    public long MaxBytes { get; init; } = DefaultMaxBytes;

    /// <summary>Largest width × height; the RGBA decode buffer is 4 bytes per pixel (160 MB at the default).</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    public ImageFormats AllowedFormats { get; init; } = ImageFormats.All;
}
