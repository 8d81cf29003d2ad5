using System.Collections.Concurrent;

namespace Kosmos2.VisionWorker.Caching;

/// <summary>
/// Concurrent callers asking for the same key share one running computation (one forward per image per
/// process, however many requests arrive for it at once). The entry is removed when the computation ends,
/// so a failure is not cached.
/// </summary>
public sealed class SingleFlight<TResult>
{
    private readonly ConcurrentDictionary<string, Lazy<Task<TResult>>> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Runs <paramref name="compute"/> for <paramref name="key"/> unless a run is already in flight; <c>Shared</c> says whether it was joined.</summary>
    public async Task<(TResult Result, bool Shared)> RunAsync(string key, Func<Task<TResult>> compute)
    {
        var mine = new Lazy<Task<TResult>>(async () =>
        {
            try
            {
                return await compute().ConfigureAwait(false);
            }
            finally
            {
                _inFlight.TryRemove(key, out _);
            }
        });
        var lazy = _inFlight.GetOrAdd(key, mine);
        var result = await lazy.Value.ConfigureAwait(false);
        return (result, !ReferenceEquals(lazy, mine));
    }
}
