namespace Kosmos2.Engine;

/// <summary>
/// The prefix cache's bookkeeping, on plain data: which idle KV slots still hold a finished sequence's rows, for which
/// image and token ids, in least-recently-used order. The rows themselves stay where the sequence wrote them (the
/// runner's pool); nothing is copied when a sequence enters the cache.
/// </summary>
/// <remarks>
/// At most <see cref="EngineOptions.MaxRunning"/> entries (16 by default) of at most MaxSequenceTokens ids each: a linear
/// scan with a token-by-token prefix comparison per admission costs microseconds against a ≥ 10 ms step.
/// </remarks>
internal sealed class PrefixCache(int capacity)
{
    private readonly List<Entry> _entries = [];
    private long _clock;

    /// <summary>One idle slot's rows: cache indices [0, Tokens.Length) hold the keys and values of these ids over <see cref="Key"/>'s image.</summary>
    public sealed class Entry(int slot, string key, int[] tokens)
    {
        public int Slot { get; } = slot;

        public string Key { get; } = key;

        public int[] Tokens { get; } = tokens;

        public long LastUsed { get; set; }
    }

    public bool Enabled => capacity > 0;

    public int Count => _entries.Count;

    public long Tokens => _entries.Sum(e => (long)e.Tokens.Length);

    public IReadOnlyList<Entry> Entries => _entries;

    /// <summary>
    /// Keeps a finished sequence's slot; returns the slot of the entry evicted to make room (−1 when none). The caller
    /// frees that slot.
    /// </summary>
    public int Add(int slot, string key, int[] tokens)
    {
        var evicted = -1;
        if (_entries.Count >= capacity)
        {
            var oldest = LeastRecentlyUsed(exceptSlot: -1)!;
            _entries.Remove(oldest);
            evicted = oldest.Slot;
        }
        _entries.Add(new Entry(slot, key, tokens) { LastUsed = ++_clock });
        return evicted;
    }

    /// <summary>Takes the entry out for a request that continues it in its own slot (no copy).</summary>
    public void Take(Entry entry) => _entries.Remove(entry);

    /// <summary>Marks the entry used (a request copied its rows).</summary>
    public void Touch(Entry entry) => entry.LastUsed = ++_clock;

    /// <summary>Drops the least recently used entry but the one in <paramref name="exceptSlot"/>; returns its slot, or −1 when none.</summary>
    public int Evict(int exceptSlot)
    {
        if (LeastRecentlyUsed(exceptSlot) is not { } oldest)
        {
            return -1;
        }
        _entries.Remove(oldest);
        return oldest.Slot;
    }

    private Entry? LeastRecentlyUsed(int exceptSlot)
    {
        Entry? oldest = null;
        foreach (var entry in _entries)
        {
            if (entry.Slot != exceptSlot && (oldest is null || entry.LastUsed < oldest.LastUsed))
            {
                oldest = entry;
            }
        }
        return oldest;
    }
}
