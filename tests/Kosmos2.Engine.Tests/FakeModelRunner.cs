using System.Globalization;
using System.Text;

namespace Kosmos2.Engine.Tests;

/// <summary>One prefill chunk as the fake saw it.</summary>
public readonly record struct ChunkRecord(long RequestId, int Slot, int Start, int End, bool IsLast)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"P{RequestId}@{Slot}[{Start},{End}){(IsLast ? "!" : "")}");
}

/// <summary>One decode row as the fake saw it.</summary>
public readonly record struct RowRecord(long RequestId, int Slot, int TokenId, int Position)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"D{RequestId}@{Slot}:{TokenId}#{Position}");
}

/// <summary>A copy of one plan: the engine's lists are not for keeping.</summary>
public sealed record RecordedPlan(long StepIndex, IReadOnlyList<ChunkRecord> Prefills, IReadOnlyList<RowRecord> Decodes)
{
    public int TokenCount => Decodes.Count + Prefills.Sum(c => c.End - c.Start);

    public bool Contains(long requestId) =>
        Prefills.Any(c => c.RequestId == requestId) || Decodes.Any(d => d.RequestId == requestId);

    public override string ToString() =>
        $"{StepIndex}: {string.Join(' ', Prefills)} | {string.Join(' ', Decodes)}";
}

/// <summary>
/// Deterministic stand-in for the TorchSharp runner. The next token is scripted per request, or else a hash of
/// (prompt, index), so it depends only on the request's own data — the same prompt gives the same tokens in any
/// batch. It records every plan and release, and checks what a real KV pool relies on (a slot has one owner,
/// chunks are contiguous, decode rows feed the last token at the right position, the step budget holds).
/// Violations are collected, not thrown: the engine would turn a throw into a runner failure.
/// </summary>
public sealed class FakeModelRunner(EngineOptions options) : IModelRunner
{
    private readonly Lock _lock = new();
    private readonly List<RecordedPlan> _plans = [];
    private readonly List<(long Step, int Slot)> _releases = [];
    private readonly List<string> _violations = [];
    private readonly Dictionary<long, int[]> _scripts = [];
    private readonly Dictionary<int, long> _slotOwners = [];
    private readonly Dictionary<long, int> _prefilled = [];
    private readonly Dictionary<long, int> _lastToken = [];
    private readonly Dictionary<int, (string? Image, List<int> Rows)> _slotRows = [];
    private readonly List<KvCopy> _copies = [];

    /// <summary>The default token of generated index <c>index</c> for a prompt; never eos (2) unless replaced.</summary>
    public Func<ReadOnlyMemory<int>, int, int> TokenFunction { get; set; } = HashToken;

    /// <summary>Called at the start of every Execute (on the loop thread), e.g. to throw or to wait.</summary>
    public Action<StepPlan>? OnExecute { get; set; }

    /// <summary>Replaces the output before it goes back to the engine, to simulate a broken runner.</summary>
    public Func<StepPlan, StepOutput, StepOutput>? RewriteOutput { get; set; }

    /// <summary>Advanced by <see cref="StepDuration"/> on every Execute, when set.</summary>
    public ManualTimeProvider? Clock { get; set; }

    public TimeSpan StepDuration { get; set; } = TimeSpan.FromMilliseconds(10);

    public IReadOnlyList<RecordedPlan> Plans
    {
        get
        {
            lock (_lock)
            {
                return [.. _plans];
            }
        }
    }

    public RecordedPlan LastPlan => Plans[^1];

    /// <summary>Every KV copy of every plan, in order.</summary>
    public IReadOnlyList<KvCopy> Copies
    {
        get
        {
            lock (_lock)
            {
                return [.. _copies];
            }
        }
    }

    /// <summary>Prompt tokens prefilled in all (chunk lengths summed).</summary>
    public int PrefilledTokens => Plans.Sum(p => p.Prefills.Sum(c => c.End - c.Start));

    /// <summary>(step index of the last plan when it happened, slot).</summary>
    public IReadOnlyList<(long Step, int Slot)> Releases
    {
        get
        {
            lock (_lock)
            {
                return [.. _releases];
            }
        }
    }

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_lock)
            {
                return [.. _violations];
            }
        }
    }

    public int SlotsHeld
    {
        get
        {
            lock (_lock)
            {
                return _slotOwners.Count;
            }
        }
    }

    /// <summary>The tokens request <paramref name="requestId"/> generates, in order; past the end the hash takes over.</summary>
    public void Script(long requestId, params int[] tokens)
    {
        lock (_lock)
        {
            _scripts[requestId] = tokens;
        }
    }

    public static int HashToken(ReadOnlyMemory<int> prompt, int index)
    {
        var hash = 17u;
        foreach (var token in prompt.Span)
        {
            hash = unchecked((hash * 31) + (uint)token);
        }
        hash = unchecked((hash * 31) + (uint)index) * 2654435761u;
        return 3 + (int)(hash % 60000);
    }

    public StepOutput Execute(StepPlan plan)
    {
        lock (_lock)
        {
            var recorded = new RecordedPlan(
                plan.StepIndex,
                [.. plan.Prefills.Select(c => new ChunkRecord(c.RequestId, c.Slot, c.Start, c.End, c.IsLast))],
                [.. plan.Decodes.Select(d => new RowRecord(d.RequestId, d.Slot, d.TokenId, d.Position))]);
            _plans.Add(recorded);
            _copies.AddRange(plan.Copies);
            Check(plan, recorded);
            WriteRows(plan);
        }
        OnExecute?.Invoke(plan);
        Clock?.Advance(StepDuration);
        lock (_lock)
        {
            var decodeIds = new int[plan.Decodes.Count];
            for (var i = 0; i < plan.Decodes.Count; i++)
            {
                var row = plan.Decodes[i];
                decodeIds[i] = Next(row.RequestId, row.Request, row.GeneratedTokenIds.Count);
            }
            var prefillIds = new int[plan.Prefills.Count];
            for (var i = 0; i < plan.Prefills.Count; i++)
            {
                var chunk = plan.Prefills[i];
                _prefilled[chunk.RequestId] = chunk.End;
                prefillIds[i] = chunk.IsLast ? Next(chunk.RequestId, chunk.Request, 0) : -1;
            }
            var output = new StepOutput(prefillIds, decodeIds);
            return RewriteOutput is null ? output : RewriteOutput(plan, output);
        }
    }

    public void Release(int slot)
    {
        lock (_lock)
        {
            var step = _plans.Count == 0 ? -1 : _plans[^1].StepIndex;
            _releases.Add((step, slot));
            if (!_slotOwners.Remove(slot, out var owner))
            {
                _violations.Add($"release of unowned slot {slot}");
                return;
            }
            _prefilled.Remove(owner);
            _lastToken.Remove(owner);
        }
    }

    public string Transcript()
    {
        var text = new StringBuilder();
        foreach (var plan in Plans)
        {
            text.AppendLine(plan.ToString());
        }
        return text.ToString();
    }

    private int Next(long requestId, GenerationRequest request, int index)
    {
        var token = _scripts.TryGetValue(requestId, out var script) && index < script.Length
            ? script[index]
            : TokenFunction(request.PromptTokenIds, index);
        _lastToken[requestId] = token;
        return token;
    }

    /// <summary>
    /// What a real KV pool would hold afterwards: each slot's token at each cache index (and the image it was computed
    /// over), so a reused prefix can be checked against the prompt that reuses it.
    /// </summary>
    private void WriteRows(StepPlan plan)
    {
        var before = _slotRows.ToDictionary(e => e.Key, e => (e.Value.Image, Rows: e.Value.Rows.ToList()));
        foreach (var copy in plan.Copies)
        {
            // Copies read what the previous step left, or what an earlier copy of this step wrote.
            var source = _slotRows.TryGetValue(copy.SourceSlot, out var s) ? s : before.GetValueOrDefault(copy.SourceSlot, (null, []));
            if (source.Rows.Count < copy.Tokens)
            {
                _violations.Add($"step {plan.StepIndex}: copy of {copy.Tokens} rows from slot {copy.SourceSlot}, which holds {source.Rows.Count}");
                continue;
            }
            _slotRows[copy.TargetSlot] = (source.Image, source.Rows.Take(copy.Tokens).ToList());
        }
        foreach (var chunk in plan.Prefills)
        {
            var image = chunk.Request.ImageEmbeddings?.Identity;
            var rows = _slotRows.TryGetValue(chunk.Slot, out var r) ? r.Rows : [];
            if (chunk.IsFirst)
            {
                var prompt = chunk.Request.PromptTokenIds.Span;
                if (chunk.ReusedTokens > 0 && (rows.Count < chunk.ReusedTokens
                    || !rows.Take(chunk.ReusedTokens).SequenceEqual(prompt[..chunk.ReusedTokens].ToArray())
                    || _slotRows[chunk.Slot].Image != image || image is null))
                {
                    _violations.Add($"step {plan.StepIndex}: {chunk.RequestId} reuses {chunk.ReusedTokens} rows of slot {chunk.Slot} that do not hold its prompt's prefix over its image");
                }
                rows = rows.Take(chunk.ReusedTokens).ToList();
            }
            for (var i = chunk.Start; i < chunk.End; i++)
            {
                if (rows.Count == i)
                {
                    rows.Add(chunk.Request.PromptTokenIds.Span[i]);
                }
                else
                {
                    _violations.Add($"step {plan.StepIndex}: {chunk.RequestId} writes index {i} of slot {chunk.Slot} holding {rows.Count}");
                }
            }
            _slotRows[chunk.Slot] = (image, rows);
        }
        foreach (var row in plan.Decodes)
        {
            if (_slotRows.TryGetValue(row.Slot, out var held) && held.Rows.Count == row.Position)
            {
                held.Rows.Add(row.TokenId);
            }
            else
            {
                _violations.Add($"step {plan.StepIndex}: decode of {row.RequestId} at {row.Position} in slot {row.Slot} not following its rows");
            }
        }
    }

    private void Check(StepPlan plan, RecordedPlan recorded)
    {
        if (recorded.TokenCount > options.MaxTokensPerStep)
        {
            _violations.Add($"step {plan.StepIndex}: {recorded.TokenCount} tokens > budget {options.MaxTokensPerStep}");
        }
        var ids = recorded.Prefills.Select(c => c.RequestId).Concat(recorded.Decodes.Select(d => d.RequestId)).ToList();
        if (ids.Distinct().Count() != ids.Count)
        {
            _violations.Add($"step {plan.StepIndex}: a request appears twice");
        }
        foreach (var chunk in plan.Prefills)
        {
            if (chunk.IsFirst)
            {
                if (_slotOwners.TryGetValue(chunk.Slot, out var owner))
                {
                    _violations.Add($"step {plan.StepIndex}: slot {chunk.Slot} given to {chunk.RequestId} while {owner} holds it");
                }
                _slotOwners[chunk.Slot] = chunk.RequestId;
                _prefilled[chunk.RequestId] = chunk.ReusedTokens;
            }
            else if (!_slotOwners.TryGetValue(chunk.Slot, out var owner) || owner != chunk.RequestId)
            {
                _violations.Add($"step {plan.StepIndex}: chunk of {chunk.RequestId} in slot {chunk.Slot} it does not hold");
            }
            if (_prefilled.GetValueOrDefault(chunk.RequestId) != chunk.Start || chunk.End <= chunk.Start)
            {
                _violations.Add($"step {plan.StepIndex}: chunk {chunk.Start}..{chunk.End} of {chunk.RequestId} not contiguous");
            }
            if (chunk.IsLast != (chunk.End == chunk.Request.PromptTokenIds.Length))
            {
                _violations.Add($"step {plan.StepIndex}: IsLast wrong for {chunk.RequestId}");
            }
        }
        foreach (var row in plan.Decodes)
        {
            if (!_slotOwners.TryGetValue(row.Slot, out var owner) || owner != row.RequestId)
            {
                _violations.Add($"step {plan.StepIndex}: decode of {row.RequestId} in slot {row.Slot} it does not hold");
            }
            if (row.TokenId != _lastToken.GetValueOrDefault(row.RequestId, -1))
            {
                _violations.Add($"step {plan.StepIndex}: decode of {row.RequestId} feeds {row.TokenId}, not its last token");
            }
            if (row.Position != row.Request.PromptTokenIds.Length + row.GeneratedTokenIds.Count - 1)
            {
                _violations.Add($"step {plan.StepIndex}: decode of {row.RequestId} at wrong position {row.Position}");
            }
            if (row.Position + 1 > options.MaxSequenceTokens)
            {
                _violations.Add($"step {plan.StepIndex}: decode of {row.RequestId} overflows its slot");
            }
        }
        if (_slotOwners.Count > options.MaxRunning)
        {
            _violations.Add($"step {plan.StepIndex}: {_slotOwners.Count} slots held > {options.MaxRunning}");
        }
    }
}
