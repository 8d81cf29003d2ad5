namespace Kosmos2.Engine;

/// <summary>
/// Logical KV slot bookkeeping: which slots are taken. Always hands out the lowest free slot so the same
/// workload gives the same slot numbers (determinism); a linear scan of ≤ a few hundred bools per admission is free.
/// </summary>
internal sealed class SlotAllocator(int capacity)
{
    private readonly bool[] _inUse = new bool[capacity];

    public int InUse { get; private set; }

    public bool HasFree => InUse < _inUse.Length;

    public int Allocate()
    {
        for (var slot = 0; slot < _inUse.Length; slot++)
        {
            if (!_inUse[slot])
            {
                _inUse[slot] = true;
                InUse++;
                return slot;
            }
        }
        throw new InvalidOperationException("No free KV slot; the scheduler must check HasFree first.");
    }

    public void Free(int slot)
    {
        if (!_inUse[slot])
        {
            throw new InvalidOperationException($"KV slot {slot} freed twice.");
        }
        _inUse[slot] = false;
        InUse--;
    }
}
