using Kosmos2.Kernels;
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

    /// <summary>Native bf16 kernels (<see cref="KernelChoice"/>), or null for libtorch.</summary>
    public Bf16Kernels? Kernels => _model.Kernels;

    /// <summary>
    /// Runs bf16 products (q/k/v, out_proj, fc1, fc2, lm_head) and cached attention on <paramref name="kernels"/>
    /// (null: libtorch). float32 and non-CPU tensors always take libtorch. With kernels, the blocks' q/k/v, out_proj,
    /// fc1 and fc2 weights and the tied lm_head/embedding table are packed in place for them
    /// (<see cref="Bf16Kernels.Pack"/>, no second copy; about half a second for the full-size model), and restored when
    /// they are dropped: call it from the thread that owns the tensors, not during a forward.
    /// </summary>
    public void UseKernels(Bf16Kernels? kernels) => _model.UseKernels(kernels);

    /// <summary>Points lm_head at embed_tokens' weight again (after the loader replaced it).</summary>
    internal void TieWeights() => _lmHead.weight = _model.EmbedTokens.weight!;

    /// <summary>The general call (see <see cref="TextForwardInput"/>): logits float32 [B, V] (Last), [B, T, V] (All) or null (None).</summary>
    public Tensor? Forward(Kosmos2KvCache cache, TextForwardInput input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = cache.Device;
        var t = (int)input.InputIds.shape[1];
        var batch = new DecoderBatch(input.Slots, input.Starts, t, device, allowSlotRange: input.AttentionMask is null);
        var ids = input.InputIds.to(device);
        var positions = input.PositionIds.to(device);
        var maxPosition = positions.max().item<long>();
        Tensor? imageMask = input.ImageEmbedsPositionMask?.to(ScalarType.Bool).to(device);
        var x = _model.Embed(ids, positions, maxPosition, input.ImageEmbeds?.to(device), imageMask);
        var h = _model.Forward(x, cache, [batch], input.AttentionMask, input.HiddenStates);
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
        var positionIds = PromptPositionIds(ids, startPos);
        var rows = ImageRowsInChunk(imageEmbeds, imageOffset, startPos, t, out var maskValues);
        var mask = rows is null ? null : torch.tensor(maskValues, [1, t]);
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
        if (slots.Length == 0)
        {
            throw new ArgumentException("DecodeStep needs at least one slot.", nameof(slots));
        }
        return Step(cache, slots, tokenIds, positions, [])!;
    }

    /// <summary>
    /// One forward for a whole engine step: decode rows (as <see cref="DecodeStep"/>) and prompt chunks (as
    /// <see cref="Prefill"/>, each into its own slot) share every weight read — q/k/v, out_proj and the FFN run once over
    /// all the step's tokens, only attention runs per part. On a memory-bound decode that saves the separate forward of
    /// the decode rows in every step that also prefills. Returns float32 logits [R, V]: one row per decode row, then
    /// one per chunk with <see cref="PrefillPart.Logits"/> (its last token), in that order; null when R = 0.
    /// </summary>
    public Tensor? Step(Kosmos2KvCache cache, ReadOnlySpan<int> decodeSlots, ReadOnlySpan<long> decodeTokenIds, ReadOnlySpan<int> decodePositions,
        IReadOnlyList<PrefillPart> prefills)
    {
        var n = decodeSlots.Length;
        if (decodeTokenIds.Length != n || decodePositions.Length != n)
        {
            throw new ArgumentException("A step needs one token id and one position per decode slot.");
        }
        if (n == 0 && prefills.Count == 0)
        {
            throw new ArgumentException("A step needs at least one decode row or prompt chunk.");
        }
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = cache.Device;
        var batches = new List<DecoderBatch>(prefills.Count + 1);
        var ids = new List<long>();
        var positionIds = new List<long>();
        var imageMask = new List<bool>();
        var imageRows = new List<Tensor>();
        var logitRows = new List<long>();
        if (n > 0)
        {
            var slots = new long[n];
            var starts = new long[n];
            for (var i = 0; i < n; i++)
            {
                slots[i] = decodeSlots[i];
                starts[i] = decodePositions[i];
                ids.Add(decodeTokenIds[i]);
                positionIds.Add(decodeTokenIds[i] == _config.PadTokenId ? _config.PadTokenId : decodePositions[i] + _config.PadTokenId + 1);
                imageMask.Add(false);
                logitRows.Add(i);
            }
            batches.Add(new DecoderBatch(slots, starts, 1, device));
        }
        foreach (var part in prefills)
        {
            var t = part.InputIds.Length;
            if (t == 0)
            {
                throw new ArgumentException("A prompt chunk needs at least one token.", nameof(prefills));
            }
            batches.Add(new DecoderBatch([part.Slot], [part.Start], t, device) { TokenOffset = ids.Count });
            ids.AddRange(part.InputIds);
            positionIds.AddRange(PromptPositionIds(part.InputIds, part.Start));
            var rows = ImageRowsInChunk(part.ImageEmbeds, part.ImageOffset, part.Start, t, out var mask);
            if (rows is not null)
            {
                imageRows.Add(rows);
            }
            imageMask.AddRange(mask);
            if (part.Logits)
            {
                logitRows.Add(ids.Count - 1);
            }
        }

        var total = ids.Count;
        var idTensor = torch.tensor(ids.ToArray(), [1, total], device: device);
        var positionTensor = torch.tensor(positionIds.ToArray(), [1, total], device: device);
        var image = imageRows.Count == 0 ? null : torch.cat(imageRows, 0).to(device);
        var imageMaskTensor = imageRows.Count == 0 ? null : torch.tensor(imageMask.ToArray(), [1, total], device: device);
        var x = _model.Embed(idTensor, positionTensor, positionIds.Max(), image, imageMaskTensor);
        var h = _model.Forward(x, cache, batches, null, null); // [1, N, D]
        if (logitRows.Count == 0)
        {
            return null;
        }
        var last = h.view(total, -1).index_select(0, torch.tensor(logitRows.ToArray(), device: device));
        return Logits(last).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Position ids of a prompt chunk that starts at absolute index <paramref name="startPos"/> of an unpadded row, as
    /// HF counts them: absolute index n → n + 2, a literal pad id → 1 (earlier tokens are all real).
    /// </summary>
    private long[] PromptPositionIds(long[] ids, int startPos)
    {
        var positionIds = new long[ids.Length];
        var counted = startPos;
        for (var i = 0; i < ids.Length; i++)
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
        return positionIds;
    }

    /// <summary>
    /// The image rows ([64, D] or [1, 64, D]; they replace absolute indices [imageOffset, imageOffset + 64)) that fall
    /// inside the chunk [startPos, startPos + t), or null; <paramref name="mask"/> marks their places in the chunk.
    /// </summary>
    private static Tensor? ImageRowsInChunk(Tensor? imageEmbeds, int imageOffset, int startPos, int t, out bool[] mask)
    {
        mask = new bool[t];
        if (imageEmbeds is null)
        {
            return null;
        }
        var image = imageEmbeds.reshape(-1, imageEmbeds.shape[^1]); // [64, D]
        var from = Math.Max(startPos, imageOffset);
        var to = Math.Min(startPos + t, imageOffset + (int)image.shape[0]);
        if (from >= to)
        {
            return null;
        }
        for (var i = from; i < to; i++)
        {
            mask[i - startPos] = true;
        }
        return image.narrow(0, from - imageOffset, to - from);
    }

    /// <summary>Prepares the loaded weights for serving: fused q/k/v per layer (see <see cref="KosmosTextAttention.FuseQkv"/>).</summary>
    internal void PrepareForInference() => _model.FuseQkv();

    /// <summary>
    /// hidden [.., D] → float32 logits [.., V] through the tied lm_head ([65037, 2048], 266 MB in bf16: the largest
    /// single product of a decode step; <see cref="Kosmos2Ops.Linear"/> takes it as mv at batch 1). With kernels its
    /// weight is packed (<see cref="Kosmos2TextTransformer.TablePacked"/>).
    /// </summary>
    private Tensor Logits(Tensor hidden) =>
        Kernels is not null && NativeOps.Takes(hidden, _lmHead.weight!)
            ? NativeOps.Linear(Kernels, hidden, _lmHead.weight!, null, float32Out: true, packed: _model.TablePacked) // float32 straight from the accumulators
            : Kosmos2Ops.Linear(hidden, _lmHead.weight!, null).to(ScalarType.Float32);
}
