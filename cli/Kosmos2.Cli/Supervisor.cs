using Kosmos2.Launch;

namespace Kosmos2.Cli;

/// <summary>
/// Keeps the processes of <c>kosmos2 up</c> running: one that exits unasked is started again, the same way (same
/// port, same settings), after a backoff that doubles with each recent crash (0.5 s, 1 s, … at most 8 s). One that
/// crashes <see cref="MaxCrashes"/> times within <see cref="CrashWindow"/> is not restarted: <see cref="GaveUp"/>
/// completes with it, and the caller stops the cluster with its log tail.
/// </summary>
internal sealed class Supervisor : IAsyncDisposable
{
    public const int MaxCrashes = 5;
    public static readonly TimeSpan CrashWindow = TimeSpan.FromMinutes(1);

    private readonly List<Supervised> _children = [];
    private readonly TaskCompletionSource<Supervised> _gaveUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Completes with the child that crashed too often.</summary>
    public Task<Supervised> GaveUp => _gaveUp.Task;

    /// <summary>
    /// Starts a child with <paramref name="start"/> (given the crash callback to pass as <see cref="ProcessOptions.OnExitedUnasked"/>)
    /// and keeps it running with the same call.
    /// </summary>
    public Supervised Start(string name, Func<Action<ServiceProcess>, ServiceProcess> start)
    {
        var child = new Supervised(this, name, start);
        lock (_children)
        {
            _children.Add(child);
        }
        child.Launch();
        return child;
    }

    /// <summary>Stops every child, the last started first (the gateway before the workers, Redis last).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        List<Supervised> children;
        lock (_children)
        {
            children = [.. _children];
        }
        foreach (var child in Enumerable.Reverse(children))
        {
            await child.StopAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
    }

    /// <summary>One supervised process: the current <see cref="ServiceProcess"/> and its recent crashes.</summary>
    internal sealed class Supervised(Supervisor supervisor, string name, Func<Action<ServiceProcess>, ServiceProcess> start)
    {
        private readonly Queue<DateTime> _crashes = new();
        private readonly object _gate = new();
        private ServiceProcess? _current;

        public string Name => name;

        /// <summary>The process running now.</summary>
        public ServiceProcess Current => _current ?? throw new InvalidOperationException($"{name} is not started.");

        /// <summary>Restarts so far.</summary>
        public int Restarts { get; private set; }

        internal void Launch()
        {
            lock (_gate)
            {
                _current = start(OnCrashed);
            }
        }

        internal async Task StopAsync()
        {
            ServiceProcess? child;
            lock (_gate)
            {
                child = _current;
            }
            if (child is not null)
            {
                await child.StopAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
                await child.DisposeAsync().ConfigureAwait(false);
            }
        }

        private void OnCrashed(ServiceProcess child) => _ = RestartAsync(child);

        private async Task RestartAsync(ServiceProcess crashed)
        {
            var now = DateTime.UtcNow;
            int recent;
            lock (_gate)
            {
                _crashes.Enqueue(now);
                while (_crashes.Peek() < now - CrashWindow)
                {
                    _crashes.Dequeue();
                }
                recent = _crashes.Count;
            }
            if (supervisor._stopping.IsCancellationRequested)
            {
                return;
            }
            if (recent >= MaxCrashes)
            {
                supervisor._gaveUp.TrySetResult(this);
                return;
            }
            var delay = TimeSpan.FromMilliseconds(Math.Min(8000, 500 * Math.Pow(2, recent - 1)));
            Console.Error.WriteLine($"kosmos2 up: {name} exited with code {crashed.ExitCode} ({recent} crash(es) in the last minute); " +
                                    $"restarting in {delay.TotalSeconds:0.#} s. Its last lines ({crashed.LogPath}):");
            Console.Error.WriteLine(crashed.Tail(5));
            try
            {
                await Task.Delay(delay, supervisor._stopping.Token).ConfigureAwait(false);
                await crashed.DisposeAsync().ConfigureAwait(false);
                lock (_gate)
                {
                    if (supervisor._stopping.IsCancellationRequested)
                    {
                        return;
                    }
                    Restarts++;
                    _current = start(OnCrashed);
                }
                Console.Error.WriteLine($"kosmos2 up: {name} restarted (pid {Current.ProcessId}).");
            }
            catch (OperationCanceledException)
            {
                // The cluster is stopping.
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"kosmos2 up: {name} could not be restarted: {ex.Message}");
                supervisor._gaveUp.TrySetResult(this);
            }
        }
    }
}
