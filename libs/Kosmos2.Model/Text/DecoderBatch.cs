using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Where each row of one batch of a decoder call lives in the KV cache: row b writes its T new keys at positions
/// [Starts[b], Starts[b]+T) of slot Slots[b] and reads keys [0, KeyLength). Plain data plus small index tensors
/// (created in the caller's dispose scope).
/// </summary>
/// <remarks>
/// How attention reads the cache, cheapest first:
/// <list type="bullet">
/// <item>slots s, s+1, … in order (a static batch): a view of those slots;</item>
/// <item>slots in any order within a range of at most 2×B slots (a continuous batch: the engine hands out the lowest
/// free slot, so running sequences stay packed): a view of the whole range, with the queries scattered to their
/// slot's row and the outputs gathered back. Rows of the range that are not in the batch compute attention nobody
/// reads (zero queries, finite);</item>
/// <item>otherwise: a gather copy of the batch's slots.</item>
/// </list>
/// The gather copies B × heads × L × head_dim keys and values per layer: at batch 16 and ~130–200 tokens of context
/// it made a bf16 decode step 1.2–1.7× slower than the same step over in-order slots (benchmarks:
/// decode_b16_mixed vs decode_b16), the everyday case of continuous batching.
/// </remarks>
internal sealed class DecoderBatch
{
    /// <param name="allowSlotRange">False when the caller's key-padding mask has one row per batch row (it would not line up with a range).</param>
    public DecoderBatch(long[] slots, long[] starts, int newTokens, Device device, bool allowSlotRange = true)
    {
        if (slots.Length != starts.Length || slots.Length == 0)
        {
            throw new ArgumentException("One start position per slot, at least one row.");
        }
        Slots = slots;
        Starts = starts;
        NewTokens = newTokens;
        KeyLength = starts.Max() + newTokens;
        SlotsTensor = torch.tensor(slots, device: device);
        StartsTensor = torch.tensor(starts, device: device);
        SameStart = starts.All(s => s == starts[0]);

        var consecutive = true;
        for (var i = 1; i < slots.Length; i++)
        {
            consecutive &= slots[i] == slots[0] + i;
        }
        var low = slots.Min();
        var range = slots.Max() - low + 1;
        if (consecutive)
        {
            ReadsSlotRange = true;
            RangeStart = slots[0];
            AttentionRows = slots.Length;
        }
        else if (allowSlotRange && range <= 2L * slots.Length && slots.Distinct().Count() == slots.Length)
        {
            ReadsSlotRange = true;
            RangeStart = low;
            AttentionRows = (int)range;
            RowsInRange = torch.tensor(slots.Select(s => s - low).ToArray(), device: device);
        }
        else
        {
            AttentionRows = slots.Length;
        }
    }

    public long[] Slots { get; }

    public long[] Starts { get; }

    /// <summary>T: tokens per row in this call (1 for a decode step).</summary>
    public int NewTokens { get; }

    /// <summary>L = max(start) + T: keys visible to the longest row.</summary>
    public long KeyLength { get; }

    public Tensor SlotsTensor { get; } // [B] int64

    public Tensor StartsTensor { get; } // [B] int64

    public bool SameStart { get; }

    public int Count => Slots.Length;

    /// <summary>B × T: the tokens this batch feeds.</summary>
    public int Tokens => Slots.Length * NewTokens;

    /// <summary>
    /// Where this batch's tokens start among the tokens of one forward that runs several batches (a step's decode rows
    /// and prompt chunks, flattened row-major: <see cref="Kosmos2TextForCausalLM.Step"/>); 0 for a forward of one batch.
    /// </summary>
    public int TokenOffset { get; init; }

    /// <summary>Attention reads slots [RangeStart, RangeStart + AttentionRows) as a view; false = a gather of <see cref="Slots"/>.</summary>
    public bool ReadsSlotRange { get; }

    public long RangeStart { get; }

    /// <summary>Rows of the attention call: B, or the range's size when the batch's rows are scattered over a range.</summary>
    public int AttentionRows { get; }

    /// <summary>[B] int64: each batch row's row in the range; null when attention rows are the batch rows.</summary>
    public Tensor? RowsInRange { get; }

    /// <summary>[B, ...] → [AttentionRows, ...]: each batch row at its slot's row, zeros elsewhere.</summary>
    public Tensor ToAttentionRows(Tensor perBatchRow)
    {
        if (RowsInRange is null)
        {
            return perBatchRow;
        }
        var shape = perBatchRow.shape.ToArray();
        shape[0] = AttentionRows;
        return torch.zeros(shape, perBatchRow.dtype, perBatchRow.device).index_copy_(0, RowsInRange, perBatchRow);
    }

    /// <summary>[AttentionRows, ...] → [B, ...]: the batch's rows, in batch order.</summary>
    public Tensor FromAttentionRows(Tensor perAttentionRow) =>
        RowsInRange is null ? perAttentionRow : perAttentionRow.index_select(0, RowsInRange);
}
