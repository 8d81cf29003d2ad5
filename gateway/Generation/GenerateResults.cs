using System.Diagnostics;
using System.Text;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Gateway.Generation;

/// <summary>One generation of a call: what the decoder ran and what came of it.</summary>
public sealed record GenerationPart(GenerationInput Input, GenerationOutcome Outcome);

/// <summary>
/// The one place a <see cref="GenerateResult"/> is built, for a single generation or for phrase grounding's several
/// (one per phrase, merged in phrase order into <c>"p0; p1; …"</c>, see <see cref="MergedText"/>).
/// </summary>
public sealed class GenerateResults(GatewayTokenizer tokenizer)
{
    public GenerateResult Build(IReadOnlyList<GenerationPart> parts, EncodedImage image, Stopwatch arrival, string sessionId = "", int turnIndex = 0)
    {
        var texts = parts.Select(p => p.Outcome.Result.CleanText).ToList();
        var result = new GenerateResult
        {
            Text = MergedText.Join(texts),
            FinishReason = parts.Any(p => p.Outcome.FinishReason == FinishReason.Length) ? FinishReason.Length : parts[0].Outcome.FinishReason,
            Usage = new Usage
            {
                PromptTokens = (uint)parts.Sum(p => p.Input.InputIds.Count),
                GeneratedTokens = (uint)parts.Sum(p => p.Outcome.GeneratedIds.Count),
                CachedPromptTokens = (uint)parts.Sum(p => p.Outcome.CachedPromptTokens),
            },
            Timings = new Timings
            {
                QueueMs = parts.Max(p => p.Outcome.QueueMs),
                VisionMs = image.VisionMs,
                ImageCacheHit = image.CacheHit,
                TimeToFirstTokenMs = parts.Min(p => p.Outcome.TimeToFirstTokenMs),
                TotalMs = arrival.Elapsed.TotalMilliseconds,
            },
            // Each generation's whole sequence (prompt + generation), one per line, as the reference's batch_decode gives it.
            RawText = string.Join("\n", parts.Select(p => tokenizer.Decode([.. p.Input.InputIds, .. p.Outcome.GeneratedIds]))),
            ImageSha256 = image.Sha256,
            SessionId = sessionId,
            TurnIndex = (uint)turnIndex,
        };
        for (var k = 0; k < parts.Count; k++)
        {
            var outcome = parts[k].Outcome;
            var offset = MergedText.OffsetOf(texts, k);
            result.Entities.Add(outcome.Result.Entities.Select((e, i) =>
                EntityMapping.ToProto(e, image.Width, image.Height, outcome.Logprobs?.EntityBoxes[i]).ShiftedBy(offset)));
            result.TokenIds.Add(outcome.GeneratedIds.Select(i => (uint)i));
            result.TokenLogprobs.Add(outcome.Logprobs?.Tokens ?? []);
            result.PromptTokenIds.Add(parts[k].Input.InputIds.Select(i => (uint)i));
        }
        return result;
    }
}

/// <summary>How the texts of several generations (phrase grounding, one per phrase) join into one text.</summary>
public static class MergedText
{
    public const string Separator = "; ";

    /// <summary>The texts in order, a separator before each one that follows some text.</summary>
    public static string Join(IEnumerable<string> texts)
    {
        var builder = new StringBuilder();
        foreach (var text in texts)
        {
            builder.Append(Prefix(builder.Length)).Append(text);
        }
        return builder.ToString();
    }

    /// <summary>What goes between the text so far (<paramref name="lengthSoFar"/> characters) and the next generation's.</summary>
    public static string Prefix(int lengthSoFar) => lengthSoFar > 0 ? Separator : "";

    /// <summary>Where text <paramref name="index"/> starts in the joined text, in code points (entity spans count them).</summary>
    public static uint OffsetOf(IReadOnlyList<string> texts, int index)
    {
        var before = Join(texts.Take(index));
        return (uint)(before + Prefix(before.Length)).EnumerateRunes().Count();
    }

    /// <summary>The entity with its span moved <paramref name="offset"/> code points on.</summary>
    public static Entity ShiftedBy(this Entity entity, uint offset)
    {
        entity.SpanStart += offset;
        entity.SpanEnd += offset;
        return entity;
    }
}
