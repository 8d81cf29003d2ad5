namespace Kosmos2.Engine;

/// <summary>
/// Decides each step's batch on plain data (vLLM v1 style): every running sequence that finished its prefill
/// gets one decode row; the remaining token budget goes to prompt chunks, first to sequences already
/// prefilling, then to waiting requests admitted first-come first-served while a KV slot is free.
/// With the prefix cache on (<see cref="EngineOptions.PrefixCacheSlots"/>) a finished sequence's slot stays reclaimable
/// with its rows, and an admitted request starts after the longest prefix of its prompt that a cached or running
/// sequence over the same image already holds (see <see cref="Admit"/>).
/// </summary>
/// <remarks>
/// Waiting and running are plain lists: they hold at most MaxWaiting (64) and MaxRunning (16) entries by default,
/// so an O(n) removal is cheaper than a linked node per request. Each step gets a new plan (two small lists, a few
/// hundred bytes) so the runner never sees a plan change under it; a decode step of the model costs ≥ 10 ms.
/// </remarks>
internal sealed class Scheduler(EngineOptions options)
{
    /// <summary>
    /// A waiting request holds back for a running sequence still prefilling a prefix it shares when that would spare it at
    /// least this many tokens: phrase grounding's N prompts share a 67+-token image prefix, so N − 1 of them wait one step
    /// and copy it instead of prefilling it N times. Shorter shared prefixes are not worth the step of delay.
    /// </summary>
    internal const int MinTokensWorthWaiting = 16;

    private readonly List<Sequence> _waiting = [];
    private readonly List<Sequence> _running = [];
    private readonly SlotAllocator _slots = new(options.MaxRunning);
    private readonly PrefixCache _prefixes = new(Math.Min(options.PrefixCacheSlots, options.MaxRunning));

    public int WaitingCount => _waiting.Count;

    public int RunningCount => _running.Count;

    /// <summary>KV slots held by sequences (cached prefixes not counted: they are reclaimable).</summary>
    public int SlotsInUse => _slots.InUse - _prefixes.Count;

    /// <summary>Idle slots holding a finished sequence's rows.</summary>
    public int CachedSlots => _prefixes.Count;

    /// <summary>Tokens those slots hold.</summary>
    public long CachedTokens => _prefixes.Tokens;

    /// <summary>Sequences holding a slot, in admission order.</summary>
    public IReadOnlyList<Sequence> Running => _running;

    /// <summary>Requests waiting for a slot, in arrival order.</summary>
    public IReadOnlyList<Sequence> Waiting => _waiting;

    /// <summary>Slots a waiting request could take now: free ones and those holding a reclaimable cached prefix.</summary>
    public int AdmittableSlots => options.MaxRunning - SlotsInUse;

    public bool HasWork => _running.Count > 0 || _waiting.Count > 0;

    /// <summary>Every sequence the scheduler holds: running in admission order, then waiting in arrival order.</summary>
    public IEnumerable<Sequence> All => _running.Concat(_waiting);

    /// <summary>Prefix cache events since the last call (the engine moves them into its counters).</summary>
    public PrefixEvents TakePrefixEvents()
    {
        var events = _events;
        _events = default;
        return events;
    }

    private PrefixEvents _events;

    public void Enqueue(Sequence sequence) => _waiting.Add(sequence);

    /// <summary>The next step, or null when there is nothing to run.</summary>
    public ScheduledStep? Schedule(long stepIndex, long now)
    {
        if (!HasWork)
        {
            return null;
        }

        var budget = options.MaxTokensPerStep;
        var decodes = new List<DecodeRow>(_running.Count);
        var decodeSequences = new List<Sequence>(_running.Count);
        foreach (var sequence in _running)
        {
            if (sequence.IsPrefillComplete)
            {
                var generated = sequence.Generated;
                decodes.Add(new DecodeRow(
                    sequence.Id,
                    sequence.Slot,
                    generated[^1],
                    sequence.PromptLength + generated.Count - 1,
                    sequence.Request,
                    generated));
                decodeSequences.Add(sequence);
                budget--;
            }
        }

        var prefills = new List<PrefillChunk>();
        var prefillSequences = new List<Sequence>();
        foreach (var sequence in _running)
        {
            if (budget == 0)
            {
                break;
            }
            if (!sequence.IsPrefillComplete)
            {
                budget -= AddChunk(prefills, prefillSequences, sequence, budget);
            }
        }

        var admitted = 0;
        var copies = new List<KvCopy>();
        while (budget > 0 && _waiting.Count > 0 && (_slots.HasFree || _prefixes.Count > 0))
        {
            var sequence = _waiting[0];
            if (!Admit(sequence, copies))
            {
                break; // first come, first served: the head holds back for a shared prefix one step, and so do those behind it
            }
            _waiting.RemoveAt(0);
            sequence.Status = RequestStatus.Running;
            sequence.AdmittedTimestamp = now;
            _running.Add(sequence);
            admitted++;
            budget -= AddChunk(prefills, prefillSequences, sequence, budget);
        }

        return new ScheduledStep(new StepPlan(stepIndex, prefills, decodes) { Copies = copies }, prefillSequences, decodeSequences, admitted);
    }

    /// <summary>
    /// Gives <paramref name="sequence"/> a slot and, with the prefix cache on, the longest prefix of its prompt whose rows a
    /// cached or running sequence over the same image holds (at most all but its last token, whose logits it needs):
    /// a cached sequence it continues whole (a chat's previous turn) hands over its slot as it is; any other source is
    /// copied into a free slot (or one reclaimed from the least recently used cached sequence). Returns false, leaving it
    /// waiting, when a running sequence is still prefilling a prefix it shares that is worth waiting a step for.
    /// </summary>
    private bool Admit(Sequence sequence, List<KvCopy> copies)
    {
        if (!_prefixes.Enabled || sequence.PrefixKey is not { } key)
        {
            sequence.Slot = AllocateOrReclaim(exceptSlot: -1);
            if (_prefixes.Enabled)
            {
                _events.Misses++;
            }
            return true;
        }

        var prompt = sequence.Request.PromptTokenIds.Span;
        var limit = prompt.Length - 1;
        var best = 0;
        var bestSlot = -1;
        PrefixCache.Entry? bestEntry = null;
        foreach (var entry in _prefixes.Entries)
        {
            if (entry.Key == key)
            {
                var shared = CommonPrefix(prompt, entry.Tokens, limit);
                if (shared > best || (shared == best && shared > 0 && shared == entry.Tokens.Length))
                {
                    (best, bestSlot, bestEntry) = (shared, entry.Slot, entry);
                }
            }
        }
        var pending = 0;
        foreach (var running in _running)
        {
            if (running.PrefixKey != key)
            {
                continue;
            }
            var shared = CommonPrefix(prompt, running, limit);
            if (shared > best)
            {
                (best, bestSlot, bestEntry) = (shared, running.Slot, null);
            }
            if (!running.IsPrefillComplete)
            {
                pending = Math.Max(pending, CommonPrefix(prompt, running.Request.PromptTokenIds.Span, limit));
            }
        }
        if (pending - best >= MinTokensWorthWaiting)
        {
            return false;
        }

        if (bestEntry is not null && best == bestEntry.Tokens.Length)
        {
            _prefixes.Take(bestEntry); // continued whole: its rows stay where they are
            sequence.Slot = bestEntry.Slot;
        }
        else if (AllocateOrReclaim(exceptSlot: bestEntry?.Slot ?? -1) is var slot && slot >= 0)
        {
            sequence.Slot = slot;
        }
        else
        {
            // The only reclaimable slot is the source itself: continue in it, its tail past the shared prefix is lost.
            _prefixes.Take(bestEntry!);
            sequence.Slot = bestEntry!.Slot;
        }
        if (best > 0 && sequence.Slot != bestSlot)
        {
            copies.Add(new KvCopy(bestSlot, sequence.Slot, best));
            if (bestEntry is not null)
            {
                _prefixes.Touch(bestEntry);
            }
        }
        sequence.ReusedTokens = best;
        sequence.PrefilledTokens = best;
        if (best > 0)
        {
            _events.Hits++;
            _events.TokensSaved += best;
        }
        else
        {
            _events.Misses++;
        }
        return true;
    }

    /// <summary>The lowest free slot, else the least recently used cached prefix's (but <paramref name="exceptSlot"/>); −1 when neither.</summary>
    private int AllocateOrReclaim(int exceptSlot)
    {
        if (_slots.HasFree)
        {
            return _slots.Allocate();
        }
        var reclaimed = _prefixes.Evict(exceptSlot);
        if (reclaimed >= 0)
        {
            _events.Evictions++;
        }
        return reclaimed;
    }

    /// <summary>
    /// A finished sequence's slot: kept with its rows as a cached prefix when the cache is on and the sequence wrote any
    /// (the least recently used entry is evicted past the budget), else freed.
    /// </summary>
    private void Retire(Sequence sequence, int slot, bool keepRows)
    {
        if (keepRows && _prefixes.Enabled && sequence.PrefixKey is { } key && sequence.KvTokens > 0)
        {
            var tokens = new int[sequence.KvTokens];
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = sequence.TokenAt(i);
            }
            var evicted = _prefixes.Add(slot, key, tokens);
            if (evicted >= 0)
            {
                _events.Evictions++;
                _slots.Free(evicted);
            }
            return;
        }
        _slots.Free(slot);
    }

    private static int CommonPrefix(ReadOnlySpan<int> prompt, ReadOnlySpan<int> tokens, int limit) =>
        Math.Min(prompt.CommonPrefixLength(tokens), limit);

    private static int CommonPrefix(ReadOnlySpan<int> prompt, Sequence running, int limit)
    {
        var n = Math.Min(running.KvTokens, limit);
        var i = 0;
        while (i < n && prompt[i] == running.TokenAt(i))
        {
            i++;
        }
        return i;
    }

    /// <summary>
    /// Takes a sequence out of the batch or the queue; returns the slot it left, or −1. With <paramref name="keepRows"/>
    /// (its rows are sound: it did not fail) the slot may stay in the prefix cache.
    /// </summary>
    public int Remove(Sequence sequence, bool keepRows)
    {
        if (sequence.Status == RequestStatus.Running)
        {
            _running.Remove(sequence);
            var slot = sequence.Slot;
            Retire(sequence, slot, keepRows);
            sequence.Slot = -1;
            return slot;
        }
        _waiting.Remove(sequence);
        return -1;
    }

    private static int AddChunk(List<PrefillChunk> prefills, List<Sequence> sequences, Sequence sequence, int budget)
    {
        var start = sequence.PrefilledTokens;
        var length = Math.Min(sequence.PromptLength - start, budget);
        var end = start + length;
        prefills.Add(new PrefillChunk(sequence.Id, sequence.Slot, sequence.Request, start, end, end == sequence.PromptLength)
        {
            ReusedTokens = sequence.ReusedTokens,
        });
        sequences.Add(sequence);
        return length;
    }
}

/// <summary>A step as scheduled: the runner's plan and, index-aligned with its chunks and rows, the sequences they belong to.</summary>
/// <param name="Admitted">Requests that left the waiting queue for a slot in this step.</param>
internal sealed record ScheduledStep(StepPlan Plan, IReadOnlyList<Sequence> Prefills, IReadOnlyList<Sequence> Decodes, int Admitted);

/// <summary>Prefix cache events counted by the scheduler.</summary>
internal record struct PrefixEvents(long Hits, long Misses, long Evictions, long TokensSaved);
