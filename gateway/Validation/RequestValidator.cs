using System.Globalization;
using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Grounding;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Validation;

/// <summary>
/// Checks of the public request fields against <see cref="GatewayOptions"/>. Each check throws INVALID_ARGUMENT
/// through <see cref="RpcErrors"/> naming the field (as the client spells it) and the limit, or returns.
/// </summary>
public static class RequestValidator
{
    private const int Sha256HexLength = 64;

    /// <summary>
    /// The image is given by content (at most <see cref="GatewayOptions.MaxImageBytes"/>) or by the lower-case hex
    /// SHA-256 of content sent before. Both may be given; then the hash must be well-formed.
    /// </summary>
    public static void ValidateImage(Image? image, GatewayOptions options, string field = "image")
    {
        if (image is null || (image.Data.IsEmpty && image.Sha256.Length == 0))
        {
            RpcErrors.InvalidArgument($"{field} is missing: send the image file in {field}.data, or {field}.sha256 of an image sent before.");
        }
        if (image.Data.Length > options.MaxImageBytes)
        {
            RpcErrors.OverLimit($"{field}.data", FormatBytes(image.Data.Length), FormatBytes(options.MaxImageBytes), GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxImageBytes));
        }
        if (image.Sha256.Length > 0 && !IsLowerHexSha256(image.Sha256))
        {
            RpcErrors.InvalidArgument($"{field}.sha256 must be 64 lower-case hex characters (the SHA-256 of the image file).");
        }
    }

    /// <summary>A prompt, question or expression: at most <see cref="GatewayOptions.MaxPromptChars"/> characters.</summary>
    public static void ValidateText(string? text, string field, GatewayOptions options, bool required = false)
    {
        if (required && string.IsNullOrWhiteSpace(text))
        {
            RpcErrors.InvalidArgument($"{field} is empty.");
        }
        if (text is not null && text.Length > options.MaxPromptChars)
        {
            RpcErrors.OverLimit(field, $"{text.Length} characters", $"{options.MaxPromptChars} characters", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxPromptChars));
        }
    }

    /// <summary>Phrases to ground: at most <see cref="GatewayOptions.MaxRegions"/>, each at most <see cref="GatewayOptions.MaxPhraseChars"/>.</summary>
    public static void ValidatePhrases(IReadOnlyList<string> phrases, GatewayOptions options, string field = "phrases")
    {
        if (phrases.Count > options.MaxRegions)
        {
            RpcErrors.OverLimit(field, $"{phrases.Count} phrases", $"{options.MaxRegions}", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxRegions));
        }
        for (var i = 0; i < phrases.Count; i++)
        {
            if (phrases[i].Length > options.MaxPhraseChars)
            {
                RpcErrors.OverLimit($"{field}[{i}]", $"{phrases[i].Length} characters", $"{options.MaxPhraseChars} characters", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxPhraseChars));
            }
        }
    }

    /// <summary>What a client sent, for an error message: at most 40 characters of it, so a message never echoes a huge field.</summary>
    public static string Quote(string value, int maxChars = 40) =>
        value.Length <= maxChars ? $"\"{value}\"" : $"\"{value[..maxChars]}…\" ({value.Length} characters)";

    /// <summary>
    /// Regions: at most <see cref="GatewayOptions.MaxRegions"/>. A region with no box is a phrase without one (the
    /// reference's <c>None</c>). A coordinate box has ordered corners (x2 &gt; x1, y2 &gt; y1) inside the image: [0, 1] for
    /// normalised boxes, [0, width] × [0, height] for pixel boxes; pixel boxes need the image size, so pass null while it
    /// is unknown and call again once it is. A patch box names two cells of the grid, the top-left one not below or right
    /// of the bottom-right one.
    /// </summary>
    public static void ValidateRegions(IReadOnlyList<Region> regions, GatewayOptions options, int? imageWidth = null, int? imageHeight = null, string field = "regions")
    {
        if (regions.Count > options.MaxRegions)
        {
            RpcErrors.OverLimit(field, $"{regions.Count} regions", $"{options.MaxRegions}", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxRegions));
        }
        for (var r = 0; r < regions.Count; r++)
        {
            var region = regions[r];
            if (region.Phrase.Length > options.MaxPhraseChars)
            {
                RpcErrors.OverLimit($"{field}[{r}].phrase", $"{region.Phrase.Length} characters", $"{options.MaxPhraseChars} characters", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxPhraseChars));
            }
            if (region.Boxes.Count > options.MaxBoxesPerRegion)
            {
                RpcErrors.OverLimit($"{field}[{r}].boxes", $"{region.Boxes.Count} boxes", $"{options.MaxBoxesPerRegion}", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxBoxesPerRegion));
            }
            for (var b = 0; b < region.Boxes.Count; b++)
            {
                ValidateBox(region.Boxes[b], region.Frame, $"{field}[{r}].boxes[{b}]", imageWidth, imageHeight);
            }
        }
    }

    /// <summary>One box in its frame, or its patch cells; see <see cref="ValidateRegions"/>.</summary>
    public static void ValidateBox(Box box, BoxFrame frame, string field, int? imageWidth = null, int? imageHeight = null)
    {
        if (box.Patch is { } patch)
        {
            ValidatePatchBox(patch, box, field);
            return;
        }
        if (!(double.IsFinite(box.X1) && double.IsFinite(box.Y1) && double.IsFinite(box.X2) && double.IsFinite(box.Y2)))
        {
            RpcErrors.InvalidArgument($"{field} has a coordinate that is not a finite number.");
        }
        if (!(box.X2 > box.X1) || !(box.Y2 > box.Y1))
        {
            RpcErrors.InvalidArgument($"{field} ({Format(box)}) is empty or inverted: x2 must be > x1 and y2 must be > y1.");
        }
        if (frame == BoxFrame.Pixels)
        {
            if (box.X1 < 0 || box.Y1 < 0)
            {
                RpcErrors.InvalidArgument($"{field} ({Format(box)}) starts outside the image: pixel coordinates are ≥ 0.");
            }
            if (imageWidth is { } w && imageHeight is { } h && (box.X2 > w || box.Y2 > h))
            {
                RpcErrors.InvalidArgument($"{field} ({Format(box)}) ends outside the {w}×{h} image.");
            }
        }
        else if (box.X1 < 0 || box.Y1 < 0 || box.X2 > 1 || box.Y2 > 1)
        {
            RpcErrors.InvalidArgument($"{field} ({Format(box)}) is outside [0, 1]: normalised coordinates are fractions of the image; use frame BOX_FRAME_PIXELS for pixels.");
        }
    }

    private static void ValidatePatchBox(PatchIndexBox patch, Box box, string field)
    {
        if (box.X1 != 0 || box.Y1 != 0 || box.X2 != 0 || box.Y2 != 0)
        {
            RpcErrors.InvalidArgument($"{field} has both coordinates ({Format(box)}) and a patch: give one or the other.");
        }
        const int last = PatchIndexCodec.PatchCount - 1;
        if (patch.TopLeft > last || patch.BottomRight > last)
        {
            RpcErrors.InvalidArgument($"{field}.patch ({patch.TopLeft}, {patch.BottomRight}) names a cell outside the grid: cells are 0…{last}.");
        }
        var (topLeftRow, topLeftColumn) = Math.DivRem((int)patch.TopLeft, PatchIndexCodec.PatchesPerSide);
        var (bottomRightRow, bottomRightColumn) = Math.DivRem((int)patch.BottomRight, PatchIndexCodec.PatchesPerSide);
        if (topLeftRow > bottomRightRow || topLeftColumn > bottomRightColumn)
        {
            RpcErrors.InvalidArgument(
                $"{field}.patch ({patch.TopLeft}, {patch.BottomRight}): the top-left cell (row {topLeftRow}, column {topLeftColumn}) is below or right of " +
                $"the bottom-right cell (row {bottomRightRow}, column {bottomRightColumn}); cells are numbered row by row, {PatchIndexCodec.PatchesPerSide} per row.");
        }
    }

    /// <summary>
    /// Sampling: temperature in [0, <see cref="GatewayOptions.MaxTemperature"/>], top_p in [0, 1],
    /// top_k ≤ <paramref name="vocabSize"/> (when known), repetition_penalty ≥ 0 (and finite).
    /// </summary>
    public static void ValidateSampling(SamplingParameters? sampling, GatewayOptions options, int? vocabSize = null, string field = "sampling")
    {
        if (sampling is null)
        {
            return;
        }
        if (!float.IsFinite(sampling.Temperature) || sampling.Temperature < 0 || sampling.Temperature > options.MaxTemperature)
        {
            RpcErrors.InvalidArgument($"{field}.temperature is {sampling.Temperature.ToString(CultureInfo.InvariantCulture)}; it must be in [0, {options.MaxTemperature.ToString(CultureInfo.InvariantCulture)}] (Gateway:{GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxTemperature)}); 0 means greedy.");
        }
        if (!float.IsFinite(sampling.TopP) || sampling.TopP < 0 || sampling.TopP > 1)
        {
            RpcErrors.InvalidArgument($"{field}.top_p is {sampling.TopP.ToString(CultureInfo.InvariantCulture)}; it must be in [0, 1] (0 or 1 disables it).");
        }
        if (vocabSize is { } vocab && sampling.TopK > vocab)
        {
            RpcErrors.InvalidArgument($"{field}.top_k is {sampling.TopK}; the limit is the vocabulary size, {vocab} (0 disables it).");
        }
        if (!float.IsFinite(sampling.RepetitionPenalty) || sampling.RepetitionPenalty < 0)
        {
            RpcErrors.InvalidArgument($"{field}.repetition_penalty is {sampling.RepetitionPenalty.ToString(CultureInfo.InvariantCulture)}; it must be ≥ 0 (0 or 1 disables it).");
        }
        ValidateLogprobs(sampling, field);
    }

    /// <summary>Alternatives per token a request may ask for; the decoder enforces the same limit (each costs a pass over the vocabulary).</summary>
    public const int MaxTopLogprobs = 5;

    /// <summary>top_logprobs ≤ <see cref="MaxTopLogprobs"/>, and only together with return_logprobs.</summary>
    private static void ValidateLogprobs(SamplingParameters sampling, string field)
    {
        if (sampling.TopLogprobs > MaxTopLogprobs)
        {
            RpcErrors.InvalidArgument($"{field}.top_logprobs is {sampling.TopLogprobs}; at most {MaxTopLogprobs} alternatives per token.");
        }
        if (sampling.TopLogprobs > 0 && !sampling.ReturnLogprobs)
        {
            RpcErrors.InvalidArgument($"{field}.top_logprobs needs {field}.return_logprobs = true.");
        }
    }

    /// <summary>
    /// Stopping: max_new_tokens ≤ <see cref="GatewayOptions.MaxNewTokens"/>, stop sequences within their limits.
    /// Returns the effective max_new_tokens (the default when the request gives 0).
    /// </summary>
    public static int ValidateStopping(StoppingParameters? stopping, GatewayOptions options, string field = "stopping")
    {
        if (stopping is null || stopping.MaxNewTokens == 0)
        {
            ValidateStopSequences(stopping, options, field);
            return options.DefaultMaxNewTokens;
        }
        if (stopping.MaxNewTokens > options.MaxNewTokens)
        {
            RpcErrors.OverLimit($"{field}.max_new_tokens", $"{stopping.MaxNewTokens}", $"{options.MaxNewTokens}", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxNewTokens));
        }
        ValidateStopSequences(stopping, options, field);
        return (int)stopping.MaxNewTokens;
    }

    private static void ValidateStopSequences(StoppingParameters? stopping, GatewayOptions options, string field)
    {
        if (stopping is null)
        {
            return;
        }
        if (stopping.StopSequences.Count > options.MaxStopSequences)
        {
            RpcErrors.OverLimit($"{field}.stop_sequences", $"{stopping.StopSequences.Count} sequences", $"{options.MaxStopSequences}", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxStopSequences));
        }
        for (var i = 0; i < stopping.StopSequences.Count; i++)
        {
            var stop = stopping.StopSequences[i];
            if (stop.Length == 0)
            {
                RpcErrors.InvalidArgument($"{field}.stop_sequences[{i}] is empty.");
            }
            if (stop.Length > options.MaxStopSequenceChars)
            {
                RpcErrors.OverLimit($"{field}.stop_sequences[{i}]", $"{stop.Length} characters", $"{options.MaxStopSequenceChars} characters", GatewayOptions.SectionName + ":" + nameof(GatewayOptions.MaxStopSequenceChars));
            }
        }
    }

    /// <summary>Lower-case hex, 64 characters.</summary>
    public static bool IsLowerHexSha256(string value) =>
        value.Length == Sha256HexLength && value.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    /// <summary>Bytes as the largest unit that keeps one decimal readable: "25 MB", "512 KB", "300 B".</summary>
    public static string FormatBytes(long bytes) => bytes switch
    {
        >= 1024 * 1024 => (bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture) + " MB",
        >= 1024 => (bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + " KB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };

    private static string Format(Box box) => string.Create(CultureInfo.InvariantCulture, $"{box.X1}, {box.Y1}, {box.X2}, {box.Y2}");
}
