namespace Kosmos2.Gateway;

/// <summary>Gateway settings, bound from the <c>Gateway</c> section (environment: <c>Gateway__ModelId</c>, …).</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Checkpoint folder whose tokenizer files (<c>sentencepiece.bpe.model</c>, added tokens) the gateway loads.</summary>
    public string TokenizerDir { get; set; } = "";

    /// <summary>Identity of the served model, reported by GetInfo.</summary>
    public string ModelId { get; set; } = "microsoft/kosmos-2-patch14-224";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>
    /// Largest accepted decoded image, in pixels, as GetInfo reports it to clients. The vision worker enforces its own
    /// <c>Vision:MaxImagePixels</c> from the image's header: set both alike (both default to <c>ImageLimits.DefaultMaxPixels</c>, 4096²).
    /// </summary>
    public long MaxImagePixels { get; set; } = Kosmos2.Processing.Images.ImageLimits.DefaultMaxPixels;

    /// <summary>Longest accepted prompt or question, in characters.</summary>
    public int MaxPromptChars { get; set; } = 2000;

    /// <summary>Most new tokens a request may ask for.</summary>
    public int MaxNewTokens { get; set; } = 512;

    /// <summary>New tokens when a request gives none (the reference's examples use 64–128).</summary>
    public int DefaultMaxNewTokens { get; set; } = 128;

    /// <summary>Most regions in one request.</summary>
    public int MaxRegions { get; set; } = 16;

    /// <summary>Most turns in one chat session.</summary>
    public int MaxSessionTurns { get; set; } = 16;

    /// <summary>Most tokens in one chat session's context.</summary>
    public int MaxSessionTokens { get; set; } = 1536;

    /// <summary>Most sampling temperature a request may ask for (higher is noise, not creativity).</summary>
    public float MaxTemperature { get; set; } = 2.0f;

    /// <summary>Most stop sequences in one request.</summary>
    public int MaxStopSequences { get; set; } = 8;

    /// <summary>Longest stop sequence, in characters.</summary>
    public int MaxStopSequenceChars { get; set; } = 64;

    /// <summary>
    /// Longest a public call may last, in seconds; a client's longer or missing deadline is cut to it. Bounds what a
    /// client that stops reading can hold (a stream, a decoder slot, its request). 600 s ≫ 512 tokens at ~0.3 s each.
    /// </summary>
    public int MaxCallSeconds { get; set; } = 600;

    /// <summary>Longest phrase (phrase grounding's <c>phrases</c>, a region's <c>phrase</c>), in characters.</summary>
    public int MaxPhraseChars { get; set; } = 256;

    /// <summary>Most boxes in one region (a phrase may point at several objects).</summary>
    public int MaxBoxesPerRegion { get; set; } = 16;

    /// <summary>Seconds a chat session lives after its last turn (refreshed on every turn).</summary>
    public int SessionTtlSeconds { get; set; } = 3600;

    /// <summary>
    /// Vision workers: <c>dns:///host:port</c> (a Kubernetes headless Service, re-resolved every
    /// <see cref="DnsRefreshSeconds"/>) or a comma-separated list of <c>http://host:port</c>. Empty: none.
    /// </summary>
    public string VisionWorkers { get; set; } = "";

    /// <summary>Decoder workers, in the same forms as <see cref="VisionWorkers"/>.</summary>
    public string DecoderWorkers { get; set; } = "";

    /// <summary>How often a <c>dns:///</c> worker address is re-resolved, in seconds.</summary>
    public int DnsRefreshSeconds { get; set; } = 15;

    /// <summary>Most attempts of one vision Encode call (retried only on UNAVAILABLE, by the channel).</summary>
    public int VisionMaxAttempts { get; set; } = 3;

    /// <summary>Most decoders one generation is offered to when they refuse it before the first token.</summary>
    public int DecoderMaxAttempts { get; set; } = 3;

    /// <summary>
    /// Longest a call waits for a ready worker when a pool has none (all down or restarting), in milliseconds; then
    /// UNAVAILABLE, which a client may retry. Long enough to ride out a reconnect, short enough to fail fast.
    /// </summary>
    public int WorkerReadyWaitMs { get; set; } = 2000;

    /// <summary>
    /// Longest an image encode may take when the caller set no shorter deadline, in milliseconds (a miss costs ~0.5 s on
    /// CPU, more behind a queue). Past it the call is RESOURCE_EXHAUSTED with a retry hint: the vision workers are busy.
    /// </summary>
    public int VisionEncodeTimeoutMs { get; set; } = 30000;

    /// <summary>Backoff before the second decoder attempt, in milliseconds; doubled per attempt, with jitter.</summary>
    public int DecoderRetryBackoffMs { get; set; } = 50;

    /// <summary>
    /// How many more in-flight streams than the least busy decoder a session's previous decoder may have
    /// and still be preferred (see <see cref="Routing.DecoderPicker"/>).
    /// </summary>
    public int DecoderAffinitySlack { get; set; } = 2;
}
