namespace Kosmos2.Processing.Prompts;

/// <summary>
/// Processor output for one image + prompt (KOSMOS2_SPEC.md §8): ids with the 64 image placeholders already
/// replaced by 4…67, an all-ones attention mask, and the mask of the rows that receive image embeddings
/// (indices <see cref="ImageOffset"/> … <see cref="ImageOffset"/> + 63).
/// </summary>
public sealed record KosmosPrompt(int[] InputIds, int[] AttentionMask, int[] ImageEmbedsPositionMask, int ImageOffset = 2);
