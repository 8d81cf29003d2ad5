using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Mirrors transformers Kosmos2TextForCausalLM (<c>text_model</c>): the decoder plus <c>lm_head</c> tied to
/// <c>embed_tokens</c>. This is the serving "text decoder": prefill (whole prompt or a chunk at an offset) and batched
/// decode steps over sequences held in <see cref="Kosmos2KvCache"/> slots. Logits come back as float32.
/// </summary>
public sealed class Kosmos2TextForCausalLM : nn.Module
{
    [ComponentName(Name = "model")]
    private readonly Kosmos2TextTransformer _model;

    [ComponentName(Name = "lm_head")]
    private readonly Linear _lmHead; // weight [V, D] = embed_tokens.weight (same tensor)

    private readonly Kosmos2TextConfig _config;

    public Kosmos2TextForCausalLM(Kosmos2TextConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2TextForCausalLM))
    {
        _config = config;
        _model = new Kosmos2TextTransformer(config, device, dtype);
        _lmHead = nn.Linear(_model.EmbedTokens.weight!, null);
        RegisterComponents();
    }

    public Kosmos2TextConfig Config => _config;

    /// <summary><c>text_model.model</c>.</summary>
    public Kosmos2TextTransformer Model => _model;

    /// <summary><c>text_model.lm_head</c> (tied).</summary>
    public Linear LmHead => _lmHead;

    /// <summary>Points lm_head at embed_tokens' weight again (after the loader replaced it).</summary>
    internal void TieWeights() => _lmHead.weight = _model.EmbedTokens.weight!;

    /// <summary>The general call (see <see cref="TextForwardInput"/>): logits float32 [B, V] (Last), [B, T, V] (All) or null (None).</summary>
    public Tensor? Forward(Kosmos2KvCache cache, TextForwardInput input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = cache.Device;
        var t = (int)input.InputIds.shape[1];
        var batch = new DecoderBatch(input.Slots, input.Starts, t, device);
        var ids = input.InputIds.to(device);
        var positions = input.PositionIds.to(device);
        var maxPosition = positions.max().item<long>();
        Tensor? imageMask = input.ImageEmbedsPositionMask?.to(ScalarType.Bool).to(device);
        var x = _model.Embed(ids, positions, maxPosition, input.ImageEmbeds?.to(device), imageMask);
        var h = _model.Forward(x, cache, batch, input.AttentionMask, input.HiddenStates);
        for (var b = 0; b < batch.Count; b++)
        {
            var slot = (int)batch.Slots[b];
            cache.SetLength(slot, Math.Max(cache.Length(slot), (int)(batch.Starts[b] + t)));
        }
        Tensor? logits = input.Logits switch
        {
            LogitsMode.Last => Logits(h.select(1, -1)),
            LogitsMode.All => Logits(h),
            _ => null,
        };
        return logits?.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Prefills <paramref name="inputIds"/> into <paramref name="slot"/> starting at absolute index
    /// <paramref name="startPos"/> (0 for a whole prompt; earlier chunks already in the slot otherwise). Image rows
    /// <paramref name="imageEmbeds"/> [64, D] or [1, 64, D] replace the tokens at absolute indices
    /// [imageOffset, imageOffset+64) that fall inside this chunk. Position ids follow HF for an unpadded row
    /// (absolute index n → n+2; a literal pad id gets 1). Returns float32 logits [1, V] for the chunk's last token, or
    /// [T, V] with <paramref name="allLogits"/>.
    /// </summary>
    public Tensor Prefill(Kosmos2KvCache cache, int slot, ReadOnlySpan<long> inputIds, int startPos = 0,
        Tensor? imageEmbeds = null, int imageOffset = 2, bool allLogits = false, List<Tensor>? hiddenStates = null)
    {
        using var scope = NewDisposeScope();
        var t = inputIds.Length;
        if (t == 0)
        {
            throw new ArgumentException("Prefill needs at least one token.", nameof(inputIds));
        }
        var ids = inputIds.ToArray();
        var positionIds = new long[t];
        var counted = startPos; // earlier tokens of an unpadded row are all real
        for (var i = 0; i < t; i++)
        {
            if (ids[i] == _config.PadTokenId)
            {
                positionIds[i] = _config.PadTokenId;
            }
            else
            {
                counted++;
                positionIds[i] = counted + _config.PadTokenId;
            }
        }

        Tensor? rows = null;
        Tensor? mask = null;
        if (imageEmbeds is not null)
        {
            var image = imageEmbeds.reshape(-1, imageEmbeds.shape[^1]); // [64, D]
            var n = (int)image.shape[0];
            var from = Math.Max(startPos, imageOffset);
            var to = Math.Min(startPos + t, imageOffset + n);
            if (from < to)
            {
                var maskValues = new bool[t];
                for (var i = from; i < to; i++)
                {
                    maskValues[i - startPos] = true;
                }
                mask = torch.tensor(maskValues, [1, t]);
                rows = image.narrow(0, from - imageOffset, to - from);
            }
        }
        var input = new TextForwardInput([slot], [startPos], torch.tensor(ids, [1, t]), torch.tensor(positionIds, [1, t]))
        {
            ImageEmbeds = rows,
            ImageEmbedsPositionMask = mask,
            Logits = allLogits ? LogitsMode.All : LogitsMode.Last,
            HiddenStates = hiddenStates,
        };
        var logits = Forward(cache, input)!;
        return (allLogits ? logits.squeeze(0) : logits).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One decode step for n sequences, each in its own slot: row i feeds <paramref name="tokenIds"/>[i] at absolute
    /// index <paramref name="positions"/>[i] of slot <paramref name="slots"/>[i] (= tokens already in the slot) and
    /// attends only to its own keys [0, positions[i]]. Position id = positions[i] + 2 (SPEC §4.2). Returns float32
    /// logits [n, V].
    /// </summary>
    public Tensor DecodeStep(Kosmos2KvCache cache, ReadOnlySpan<int> slots, ReadOnlySpan<long> tokenIds, ReadOnlySpan<int> positions)
    {
        var n = slots.Length;
        if (tokenIds.Length != n || positions.Length != n)
        {
            throw new ArgumentException("DecodeStep needs one token id and one position per slot.");
        }
        using var scope = NewDisposeScope();
        var slotArray = new long[n];
        var startArray = new long[n];
        var positionIds = new long[n];
        for (var i = 0; i < n; i++)
        {
            slotArray[i] = slots[i];
            startArray[i] = positions[i];
            positionIds[i] = tokenIds[i] == _config.PadTokenId ? _config.PadTokenId : positions[i] + _config.PadTokenId + 1;
        }
        var input = new TextForwardInput(slotArray, startArray, torch.tensor(tokenIds.ToArray(), [n, 1]), torch.tensor(positionIds, [n, 1]));
        return Forward(cache, input)!.MoveToOuterDisposeScope();
    }

    /// <summary>Prepares the loaded weights for serving: fused q/k/v per layer (see <see cref="KosmosTextAttention.FuseQkv"/>).</summary>
    internal void PrepareForInference() => _model.FuseQkv();

    /// <summary>
    /// hidden [.., D] → float32 logits [.., V] through the tied lm_head ([65037, 2048], 266 MB in bf16: the largest
    /// single product of a decode step; <see cref="Kosmos2Ops.Linear"/> takes it as mv at batch 1).
    /// </summary>
    private Tensor Logits(Tensor hidden) => Kosmos2Ops.Linear(hidden, _lmHead.weight!, null).to(ScalarType.Float32);
}
