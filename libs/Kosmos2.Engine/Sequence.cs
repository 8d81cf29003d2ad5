namespace Kosmos2.Engine;

/// <summary>The engine's mutable state of one accepted request; touched only on the loop thread after intake.</summary>
internal sealed class Sequence(long id, GenerationRequest request, IRequestSink sink, long arrivalTimestamp)
{
    /// <summary>Capacity min(max new tokens, 256): most answers end well before a generous limit, and 256 ids are 1 KiB.</summary>
    private readonly List<int> _generated = new(Math.Min(request.Stopping.MaxNewTokens, 256));

    public long Id { get; } = id;

    public GenerationRequest Request { get; } = request;

    public IRequestSink Sink { get; } = sink;

    public RequestStatus Status { get; set; } = RequestStatus.Waiting;

    /// <summary>The KV slot held while running; −1 otherwise.</summary>
    public int Slot { get; set; } = -1;

    /// <summary>Prompt tokens already in the KV cache.</summary>
    public int PrefilledTokens { get; set; }

    public int PromptLength => Request.PromptTokenIds.Length;

    public bool IsPrefillComplete => PrefilledTokens == PromptLength;

    /// <summary>Prompt tokens reused from the prefix cache at admission (their rows were never prefilled for this request).</summary>
    public int ReusedTokens { get; set; }

    /// <summary>
    /// What the prefix cache matches besides token ids: the image's identity and where it sits; null (no image identity)
    /// = never shares rows. A prompt without an image shares nothing either: a text-only prefix is short.
    /// </summary>
    public string? PrefixKey { get; } = request.ImageEmbeddings?.Identity is { } image ? $"{image}@{request.ImageOffset}" : null;

    /// <summary>
    /// Cache indices whose keys and values are written now: the prefilled prompt, then every generated token but the
    /// last (sampled, not yet fed).
    /// </summary>
    public int KvTokens => IsPrefillComplete ? PromptLength + Math.Max(0, _generated.Count - 1) : PrefilledTokens;

    /// <summary>The token at cache index <paramref name="index"/> (&lt; <see cref="KvTokens"/>).</summary>
    public int TokenAt(int index) => index < PromptLength ? Request.PromptTokenIds.Span[index] : _generated[index - PromptLength];

    public IReadOnlyList<int> Generated => _generated;

    public long ArrivalTimestamp { get; } = arrivalTimestamp;

    /// <summary>When its first prefill chunk was scheduled; null while waiting.</summary>
    public long? AdmittedTimestamp { get; set; }

    public long FirstTokenTimestamp { get; set; }

    public long LastTokenTimestamp { get; set; }

    public void Append(int tokenId, long timestamp)
    {
        if (_generated.Count == 0)
        {
            FirstTokenTimestamp = timestamp;
        }
        _generated.Add(tokenId);
        LastTokenTimestamp = timestamp;
    }

    /// <summary>Timings as of <paramref name="now"/>; phases not reached are zero.</summary>
    public RequestTimings Timings(TimeProvider time, long now)
    {
        var queue = time.GetElapsedTime(ArrivalTimestamp, AdmittedTimestamp ?? now);
        if (_generated.Count == 0 || AdmittedTimestamp is not { } admitted)
        {
            return new RequestTimings(queue, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        }
        return new RequestTimings(
            queue,
            time.GetElapsedTime(admitted, FirstTokenTimestamp),
            time.GetElapsedTime(ArrivalTimestamp, FirstTokenTimestamp),
            time.GetElapsedTime(FirstTokenTimestamp, LastTokenTimestamp));
    }
}
