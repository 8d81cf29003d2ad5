using Kosmos2.Model;
using Kosmos2.VisionWorker.Caching;

namespace Kosmos2.VisionWorker;

/// <summary>Vision worker settings, bound from the <c>Vision</c> section (environment: <c>Vision__ModelDir</c>, …).</summary>
public sealed class VisionWorkerOptions : ModelSourceOptions
{
    public const string SectionName = "Vision";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest accepted decoded image, in pixels (checked from the header, before decoding).</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

    /// <summary>Accepted formats, comma-separated (png, jpeg, webp, gif, bmp).</summary>
    public string Formats { get; set; } = "png,jpeg,webp,gif,bmp";

    /// <summary>Most images in one forward.</summary>
    public int MaxBatch { get; set; } = 4;

    /// <summary>How long the encoder thread waits for more images to fill a batch, in ms.</summary>
    public int MaxBatchWaitMs { get; set; } = 5;

    /// <summary>Most images waiting for the encoder; more are refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxQueue { get; set; } = 64;

    /// <summary>The embedding cache.</summary>
    public EmbeddingCacheOptions Cache { get; set; } = new();
}
