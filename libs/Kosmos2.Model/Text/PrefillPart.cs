using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// One prompt chunk of a step (<see cref="Kosmos2TextForCausalLM.Step"/>): <see cref="InputIds"/> go into cache slot
/// <see cref="Slot"/> at absolute indices [<see cref="Start"/>, Start + T), as <see cref="Kosmos2TextForCausalLM.Prefill"/>
/// would write them.
/// </summary>
/// <param name="Slot">The sequence's KV slot (earlier chunks of the prompt already in it when Start &gt; 0).</param>
/// <param name="InputIds">The chunk's token ids (image positions included; their embeddings are replaced).</param>
/// <param name="Start">Absolute index of the chunk's first token in the sequence.</param>
/// <param name="ImageEmbeds">[64, D] or [1, 64, D] image rows for absolute indices [ImageOffset, ImageOffset + 64), or null; the caller owns it.</param>
/// <param name="ImageOffset">Absolute index of the first image position.</param>
/// <param name="Logits">Whether the step returns logits for the chunk's last token (true for a prompt's last chunk).</param>
public sealed record PrefillPart(int Slot, long[] InputIds, int Start, Tensor? ImageEmbeds = null, int ImageOffset = 2, bool Logits = true);
