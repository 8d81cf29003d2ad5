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

    /// <summary>
    /// 4096×4096 (16.8 M): a 12 MP phone photo or a 4K frame fits. One decode then holds at most about
    /// 7 B/px = 117 MB of pixels plus the file (see <see cref="DecodeBytesBound"/>); at the old 40 M it was 280 MB.
    /// </summary>
    public const long DefaultMaxPixels = 4096L * 4096;

    /// <summary>
    /// 64:1 (long side : short side). The model squashes every image to 224×224 whatever its shape, so even a 10:1
    /// panorama or a 1:30 scrolling screenshot is usable and passes; beyond 64:1 one output pixel averages more than
    /// 64 source rows. The bound also caps the longest side at √(pixels·64) = 32768 at the default pixel limit, which
    /// bounds the resize's intermediate (672 B per source row: 22 MB instead of 672 MB for a 40×1,000,000 PNG).
    /// </summary>
    public const double DefaultMaxAspectRatio = 64;

    /// <summary>Bytes per row of the resize's horizontal-pass intermediate: 224 output columns × 3 channels.</summary>
    private const long IntermediateBytesPerRow = 224 * 3;

    /// <summary>The defaults: 20 MiB encoded, 4096×4096 decoded pixels, 64:1, PNG/JPEG/WebP/GIF/BMP.</summary>
    public static ImageLimits Default { get; } = new();

    /// <summary>Largest encoded size in bytes.</summary>
    public long MaxBytes { get; init; } = DefaultMaxBytes;

    /// <summary>Largest width × height; the decode buffers are 4 (RGBA) + 3 (RGB) bytes per pixel.</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Largest ratio of the long side to the short side (≥ 1).</summary>
    public double MaxAspectRatio { get; init; } = DefaultMaxAspectRatio;

    public ImageFormats AllowedFormats { get; init; } = ImageFormats.All;

    /// <summary>The longest side an accepted image can have: √(MaxPixels · MaxAspectRatio), and never more than MaxPixels.</summary>
    public long MaxLongSide => (long)Math.Min(MaxPixels, Math.Floor(Math.Sqrt((double)MaxPixels * MaxAspectRatio)));

    /// <summary>
    /// An upper bound on the bytes one decode + preprocess of an accepted image allocates at once: the copy of the
    /// file Skia reads, RGBA (4 B/px) and RGB (3 B/px) buffers, and the resize intermediate (672 B per source row).
    /// A progressive JPEG adds up to 6 B/px inside libjpeg (its coefficient buffer), which is not counted here.
    /// </summary>
    public long DecodeBytesBound => MaxBytes + (7 * MaxPixels) + (IntermediateBytesPerRow * MaxLongSide);
}
