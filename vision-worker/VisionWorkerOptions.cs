using Kosmos2.Model;
using Kosmos2.Processing.Images;
using Kosmos2.VisionWorker.Caching;

namespace Kosmos2.VisionWorker;

/// <summary>Vision worker settings, bound from the <c>Vision</c> section (environment: <c>Vision__ModelDir</c>, …).</summary>
public sealed class VisionWorkerOptions : ModelSourceOptions
{
    public const string SectionName = "Vision";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>
    /// Largest accepted decoded image, in pixels (checked from the header, before decoding); 4096×4096 by default,
    /// about 7 B/px = 117 MB of pixel buffers per decode (see <see cref="ImageLimits.DefaultMaxPixels"/>).
    /// </summary>
    public long MaxImagePixels { get; set; } = ImageLimits.DefaultMaxPixels;

    /// <summary>Largest long side : short side, e.g. 64 for 64:1 (checked from the header); see <see cref="ImageLimits.DefaultMaxAspectRatio"/>.</summary>
    public double MaxImageAspectRatio { get; set; } = ImageLimits.DefaultMaxAspectRatio;

    /// <summary>
    /// Most images decoded and preprocessed at once; 0 = the CPUs this process may use (the work is CPU-bound, one
    /// core each). Peak decode memory is this × <see cref="ImageLimits.DecodeBytesBound"/> (about 160 MB at the defaults).
    /// </summary>
    public int MaxConcurrentDecodes { get; set; }

    /// <summary>
    /// Most requests waiting for a decode slot; more are refused with RESOURCE_EXHAUSTED (and retry elsewhere). 16 parks
    /// at most 16 request messages (320 MiB at the 20 MiB file limit, typically far less) while the slots work through them.
    /// </summary>
    public int MaxWaitingDecodes { get; set; } = 16;

    /// <summary>Accepted formats, comma-separated (png, jpeg, webp, gif, bmp).</summary>
    public string Formats { get; set; } = "png,jpeg,webp,gif,bmp";

    /// <summary>Most images in one forward; 0 (the default) = by device: 1 on a CPU, 4 on a GPU (see <c>EncoderLoop.AutoMaxBatch</c>).</summary>
    public int MaxBatch { get; set; }

    /// <summary>How long the encoder thread waits for more images to fill a batch, in ms.</summary>
    public int MaxBatchWaitMs { get; set; } = 5;

    /// <summary>Most images waiting for the encoder; more are refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxQueue { get; set; } = 64;

    /// <summary>The embedding cache.</summary>
    public EmbeddingCacheOptions Cache { get; set; } = new();
}
