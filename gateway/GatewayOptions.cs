namespace Kosmos2.Gateway;

/// <summary>Gateway settings, bound from the <c>Gateway</c> section (environment: <c>Gateway__ModelId</c>, …).</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Identity of the served model, reported by GetInfo.</summary>
    public string ModelId { get; set; } = "microsoft/kosmos-2-patch14-224";

    /// <summary>Largest accepted image file, in bytes.</summary>
    public long MaxImageBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest accepted decoded image, in pixels.</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

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
}
