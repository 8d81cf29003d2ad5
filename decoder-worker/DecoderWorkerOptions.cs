namespace Kosmos2.DecoderWorker;

/// <summary>Decoder worker settings, bound from the <c>Decoder</c> section (environment: <c>Decoder__ModelDir</c>, …).</summary>
public sealed class DecoderWorkerOptions
{
    public const string SectionName = "Decoder";

    /// <summary>The checkpoint folder (a Hugging Face <c>kosmos-2-patch14-224</c> layout).</summary>
    public string ModelDir { get; set; } = "";

    /// <summary>Identity reported to clients.</summary>
    public string ModelId { get; set; } = "microsoft/kosmos-2-patch14-224";

    /// <summary>Compute dtype: <c>float32</c> or <c>bfloat16</c>.</summary>
    public string DType { get; set; } = "bfloat16";

    /// <summary>Most sequences decoded together (= KV slots).</summary>
    public int MaxRunning { get; set; } = 16;

    /// <summary>Most requests waiting for admission; more are refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxWaiting { get; set; } = 64;

    /// <summary>Longest context (prompt + new tokens) of one sequence.</summary>
    public int MaxSequenceTokens { get; set; } = 1024;
}
