namespace Kosmos2.Engine;

/// <summary>
/// Decides each step's batch on plain data (vLLM v1 style): every running sequence that finished its prefill
/// gets one decode row; the remaining token budget goes to prompt chunks, first to sequences already
/// prefilling, then to waiting requests admitted first-come first-served while a KV slot is free.
/// </summary>
/// <remarks>
/// Waiting and running are plain lists: they hold at most MaxWaiting (64) and MaxRunning (16) entries by default,
/// so an O(n) removal is cheaper than a linked node per request. Each step gets a new plan (two small lists, a few
/// hundred bytes) so the runner never sees a plan change under it; a decode step of the model costs ≥ 10 ms.
/// </remarks>
internal sealed class Scheduler(EngineOptions options)
{
    private readonly List<Sequence> _waiting = [];
    private readonly List<Sequence> _running = [];
    private readonly SlotAllocator _slots = new(options.MaxRunning);

    public int WaitingCount => _waiting.Count;

    public int RunningCount => _running.Count;

    public int SlotsInUse => _slots.InUse;

    public bool HasWork => _running.Count > 0 || _waiting.Count > 0;

    /// <summary>Every sequence the scheduler holds: running in admission order, then waiting in arrival order.</summary>
    public IEnumerable<Sequence> All => _running.Concat(_waiting);

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
        while (budget > 0 && _waiting.Count > 0 && _slots.HasFree)
        {
            var sequence = _waiting[0];
            _waiting.RemoveAt(0);
            sequence.Slot = _slots.Allocate();
            sequence.Status = RequestStatus.Running;
            sequence.AdmittedTimestamp = now;
            _running.Add(sequence);
            admitted++;
            budget -= AddChunk(prefills, prefillSequences, sequence, budget);
        }

        return new ScheduledStep(new StepPlan(stepIndex, prefills, decodes), prefillSequences, decodeSequences, admitted);
    }

    /// <summary>Takes a sequence out of the batch or the queue; returns the slot it freed, or −1.</summary>
    public int Remove(Sequence sequence)
    {
        if (sequence.Status == RequestStatus.Running)
        {
            _running.Remove(sequence);
            var slot = sequence.Slot;
            _slots.Free(slot);
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
        prefills.Add(new PrefillChunk(sequence.Id, sequence.Slot, sequence.Request, start, end, end == sequence.PromptLength));
        sequences.Add(sequence);
        return length;
    }
}

/// <summary>A step as scheduled: the runner's plan and, index-aligned with its chunks and rows, the sequences they belong to.</summary>
/// <param name="Admitted">Requests that left the waiting queue for a slot in this step.</param>
internal sealed record ScheduledStep(StepPlan Plan, IReadOnlyList<Sequence> Prefills, IReadOnlyList<Sequence> Decodes, int Admitted);
