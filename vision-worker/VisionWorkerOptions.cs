using Kosmos2.VisionWorker.Caching;

namespace Kosmos2.VisionWorker;

/// <summary>Vision worker settings, bound from the <c>Vision</c> section (environment: <c>Vision__ModelDir</c>, …).</summary>
public sealed class VisionWorkerOptions
{
    public const string SectionName = "Vision";

    /// <summary>The checkpoint folder (a Hugging Face <c>kosmos-2-patch14-224</c> layout).</summary>
    public string ModelDir { get; set; } = "";

    /// <summary>
    /// Benchmarks and smoke tests only: build seeded random weights instead of loading <see cref="ModelDir"/>
    /// (<c>default</c> = full-size published configuration, or a config.json path). Empty: load <see cref="ModelDir"/>.
    /// </summary>
    public string RandomInit { get; set; } = "";

    /// <summary>Identity reported to clients and used in cache keys; defaults to the folder's name.</summary>
    public string ModelId { get; set; } = "";

    /// <summary>Compute dtype: <c>float32</c> or <c>bfloat16</c>.</summary>
    public string DType { get; set; } = "bfloat16";

    /// <summary>Device: <c>auto</c> (CUDA when available), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest accepted decoded image, in pixels (checked from the header, before decoding).</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

    /// <summary>Accepted formats, comma-separated (png, jpeg, webp, gif, bmp).</summary>
    public string Formats { get; set; } = "png,jpeg,webp,gif,bmp";

    /// <summary>Intra-op threads of libtorch; 0 = one per CPU this process may use (the container's CPU limit counts).</summary>
    public int Threads { get; set; }

    /// <summary>Most images in one forward.</summary>
    public int MaxBatch { get; set; } = 4;

    /// <summary>How long the encoder thread waits for more images to fill a batch, in ms.</summary>
    public int MaxBatchWaitMs { get; set; } = 5;

    /// <summary>Most images waiting for the encoder; more are refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxQueue { get; set; } = 64;

    /// <summary>The embedding cache.</summary>
    public EmbeddingCacheOptions Cache { get; set; } = new();
}
