namespace Kosmos2.Engine;

/// <summary>Where one request's time went; phases it never reached are zero.</summary>
/// <param name="Queue">From submit to admission (first prefill chunk scheduled).</param>
/// <param name="Prefill">From admission to the first generated token.</param>
/// <param name="TimeToFirstToken">From submit to the first generated token.</param>
/// <param name="Decode">From the first to the last generated token.</param>
public readonly record struct RequestTimings(TimeSpan Queue, TimeSpan Prefill, TimeSpan TimeToFirstToken, TimeSpan Decode);
