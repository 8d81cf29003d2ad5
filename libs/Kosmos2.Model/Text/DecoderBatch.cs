using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Where each row of one decoder call lives in the KV cache: row b writes its T new keys at positions
/// [Starts[b], Starts[b]+T) of slot Slots[b] and reads keys [0, KeyLength). Plain data plus two small index tensors
/// (created in the caller's dispose scope).
/// </summary>
internal sealed class DecoderBatch
{
    public DecoderBatch(long[] slots, long[] starts, int newTokens, Device device)
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
        var consecutive = true;
        for (var i = 1; i < slots.Length; i++)
        {
            consecutive &= slots[i] == slots[0] + i;
        }
        SlotsAreConsecutive = consecutive;
        SameStart = starts.All(s => s == starts[0]);
    }

    public long[] Slots { get; }

    public long[] Starts { get; }

    /// <summary>T: tokens per row in this call (1 for a decode step).</summary>
    public int NewTokens { get; }

    /// <summary>L = max(start) + T: keys visible to the longest row.</summary>
    public long KeyLength { get; }

    public Tensor SlotsTensor { get; } // [B] int64

    public Tensor StartsTensor { get; } // [B] int64

    /// <summary>Slots form a run s, s+1, …: the cache is read as a view, without a gather copy.</summary>
    public bool SlotsAreConsecutive { get; }

    public bool SameStart { get; }

    public int Count => Slots.Length;
}
