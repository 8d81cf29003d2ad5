namespace Kosmos2.Gateway.Routing;

/// <summary>
/// One decoder call's routing wishes and outcome, handed to <see cref="DecoderPicker"/> through an async-local
/// (grpc-dotnet gives the picker only the HTTP request; the call's execution context flows into it).
/// In: the preferred address (session affinity) and the addresses to avoid (those that refused this request).
/// Out: the address that took the call and its in-flight lease, released when the stream ends.
/// </summary>
internal sealed class DecoderRouting(string? preferredAddress, IReadOnlySet<string> excludedAddresses)
{
    private static readonly AsyncLocal<DecoderRouting?> CurrentSlot = new();

    private InFlightLease? _lease;
    private volatile string? _chosenAddress;

    /// <summary>The routing of the decoder call being started on this execution context.</summary>
    public static DecoderRouting? Current => CurrentSlot.Value;

    public string? PreferredAddress { get; } = preferredAddress;

    public IReadOnlySet<string> ExcludedAddresses { get; } = excludedAddresses;

    /// <summary>The decoder that took the call; null until the call was sent.</summary>
    public string? ChosenAddress => _chosenAddress;

    /// <summary>Makes this routing current for calls started inside <paramref name="start"/>.</summary>
    public T Apply<T>(Func<T> start)
    {
        var previous = CurrentSlot.Value;
        CurrentSlot.Value = this;
        try
        {
            return start();
        }
        finally
        {
            CurrentSlot.Value = previous;
        }
    }

    /// <summary>Called when the call is sent on <paramref name="address"/>.</summary>
    public void Attach(string? address, InFlightLease lease)
    {
        // A call is sent once; should grpc-dotnet ever send it again, the newer attempt owns the count.
        Interlocked.Exchange(ref _lease, lease)?.Release();
        _chosenAddress = address;
    }

    /// <summary>Ends this call's share of its decoder's in-flight count (idempotent).</summary>
    public void Release() => Volatile.Read(ref _lease)?.Release();
}
