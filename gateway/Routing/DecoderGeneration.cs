using System.Runtime.CompilerServices;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.Gateway.Routing;

/// <summary>
/// A decoder's generation stream after its first message: the generation is committed to <see cref="Address"/>.
/// Read it once with <see cref="ReadAllAsync"/>; dispose it to end the call (cancelling it if unfinished) and to
/// release the decoder's in-flight count.
/// </summary>
public sealed class DecoderGeneration : IDisposable
{
    private readonly AsyncServerStreamingCall<DecodeResponse> _call;
    private readonly DecoderRouting _routing;
    private DecodeResponse? _first;
    private int _read;

    internal DecoderGeneration(AsyncServerStreamingCall<DecodeResponse> call, DecoderRouting routing, DecodeResponse? first, int attempts)
    {
        _call = call;
        _routing = routing;
        _first = first;
        Attempts = attempts;
        if (first is null)
        {
            // The decoder ended the stream without a message: nothing more to count.
            routing.Release();
        }
    }

    /// <summary>The decoder serving this stream (<c>host:port</c>); store it as the session's affinity hint.</summary>
    public string? Address => _routing.ChosenAddress;

    /// <summary>How many decoders were tried (1 when the first took it).</summary>
    public int Attempts { get; }

    /// <summary>The messages: the first (already received), then the rest as they arrive.</summary>
    public async IAsyncEnumerable<DecodeResponse> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _read, 1) != 0)
        {
            throw new InvalidOperationException("A decoder stream is read once.");
        }
        if (_first is { } first)
        {
            _first = null;
            yield return first;
        }
        else
        {
            yield break;
        }
        while (await _call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return _call.ResponseStream.Current;
        }
        _routing.Release();
    }

    /// <summary>Status of the finished call (valid after <see cref="ReadAllAsync"/> completed).</summary>
    public Status GetStatus() => _call.GetStatus();

    public void Dispose()
    {
        _routing.Release();
        _call.Dispose();
    }
}
