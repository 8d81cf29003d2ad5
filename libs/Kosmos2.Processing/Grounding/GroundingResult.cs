namespace Kosmos2.Processing.Grounding;

/// <summary>
/// One grounded phrase of a generated caption. <see cref="SpanStart"/>/<see cref="SpanEnd"/> index
/// <see cref="GroundingResult.CleanText"/> in Unicode code points, end-exclusive, exactly as HF returns them
/// (so <c>SpanStart &gt; SpanEnd</c> is possible for a blank phrase). A phrase-less <c>&lt;object&gt;</c> gives one
/// entity per box named <c>&lt;patch_index_{ul}&gt;&lt;patch_index_{lr}&gt;</c> (un-padded) with an empty span.
/// </summary>
public sealed record GroundedEntity(
    string Phrase,
    int SpanStart,
    int SpanEnd,
    IReadOnlyList<(int Ul, int Lr)> PatchBoxes,
    IReadOnlyList<NormalizedBox> Boxes);

/// <summary>HF <c>post_process_generation</c> output: caption without tags, stripped, and its entities in order.</summary>
public sealed record GroundingResult(string CleanText, IReadOnlyList<GroundedEntity> Entities);
