namespace Kosmos2.Engine;

/// <summary>When a request stops generating; the engine checks these after every token.</summary>
/// <param name="MaxNewTokens">Most tokens to generate (≥ 1); prompt + this must fit one KV slot.</param>
/// <param name="StopSequences">Generation stops once the generated ids end with one of these (each non-empty).</param>
/// <param name="IgnoreEos">Keep generating after <c>&lt;/s&gt;</c> (benchmarks only).</param>
public sealed record StoppingParameters(
    int MaxNewTokens,
    IReadOnlyList<int[]>? StopSequences = null,
    bool IgnoreEos = false);
