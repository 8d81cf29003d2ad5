namespace Kosmos2.VisionWorker;

/// <summary>Vision worker settings, bound from the <c>Vision</c> section (environment: <c>Vision__ModelDir</c>, …).</summary>
public sealed class VisionWorkerOptions
{
    public const string SectionName = "Vision";

    /// <summary>The checkpoint folder (a Hugging Face <c>kosmos-2-patch14-224</c> layout).</summary>
    public string ModelDir { get; set; } = "";

    /// <summary>Identity reported to clients and used in cache keys.</summary>
    public string ModelId { get; set; } = "microsoft/kosmos-2-patch14-224";

    /// <summary>Compute dtype: <c>float32</c> or <c>bfloat16</c>.</summary>
    public string DType { get; set; } = "bfloat16";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest accepted decoded image, in pixels.</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

    /// <summary>Most images in one forward.</summary>
    public int MaxBatch { get; set; } = 4;
}
