using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Greedy decoding of one prompt through the KV cache (the CLI's offline path and the tests' reference): prefill,
/// argmax (ties → lowest id, as torch.argmax), then one decode step per token until <c>&lt;/s&gt;</c> or the limit.
/// The serving engine does the same per sequence, batched.
/// </summary>
public static class Kosmos2GreedyGenerator
{
    /// <summary>
    /// Returns the new token ids (including a final <c>&lt;/s&gt;</c> when emitted).
    /// <paramref name="onStepLogits"/> sees each step's float32 logits [V] (valid only during the call).
    /// </summary>
    public static long[] Generate(Kosmos2Model model, ReadOnlySpan<long> inputIds, Tensor? imageEmbeds, int maxNewTokens,
        int imageOffset = 2, Action<int, Tensor>? onStepLogits = null)
    {
        using var cache = model.CreateKvCache(1, inputIds.Length + Math.Max(maxNewTokens, 1));
        return Generate(model, cache, 0, inputIds, imageEmbeds, maxNewTokens, imageOffset, onStepLogits);
    }

    /// <summary>Same, in slot <paramref name="slot"/> of an existing cache.</summary>
    public static long[] Generate(Kosmos2Model model, Kosmos2KvCache cache, int slot, ReadOnlySpan<long> inputIds, Tensor? imageEmbeds,
        int maxNewTokens, int imageOffset = 2, Action<int, Tensor>? onStepLogits = null)
    {
        var eos = model.Config.EosTokenId;
        var tokens = new List<long>(maxNewTokens);
        if (maxNewTokens <= 0)
        {
            return [];
        }
        var position = inputIds.Length;
        using (var scope = NewDisposeScope())
        {
            var logits = model.TextDecoder.Prefill(cache, slot, inputIds, 0, imageEmbeds, imageOffset); // [1, V]
            tokens.Add(Pick(logits[0], 0, onStepLogits));
        }
        while (tokens.Count < maxNewTokens && tokens[^1] != eos)
        {
            using var scope = NewDisposeScope();
            var logits = model.TextDecoder.DecodeStep(cache, [slot], [tokens[^1]], [position]); // [1, V]
            position++;
            tokens.Add(Pick(logits[0], tokens.Count, onStepLogits));
        }
        return [.. tokens];
    }

    private static long Pick(Tensor logits, int step, Action<int, Tensor>? onStepLogits)
    {
        onStepLogits?.Invoke(step, logits);
        return logits.argmax().item<long>();
    }
}
