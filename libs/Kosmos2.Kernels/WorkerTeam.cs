using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Kosmos2.Kernels;

/// <summary>
/// Dedicated threads that split one kernel call into pieces, fork-join, with the calling thread taking pieces too.
/// Replaces <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>, which on a 2-core AMD EPYC (2026-12-02,
/// idle) scaled a [8192, 2048] × 128-row product only 1.6× from 1 to 2 threads (233 → 376 GFLOP/s) where the same C
/// split over two pthreads scaled 1.87×: waking thread-pool threads costs every one of a decode step's ~100 calls.
/// Workers spin for <see cref="SpinMicroseconds"/> after a call, since the next one usually follows within tens of
/// microseconds, then block, so an idle worker costs no CPU. Pieces are claimed one at a time, so a core taken away by
/// another process delays only the piece it holds. Which thread runs a piece never changes what it computes.
/// </summary>
internal sealed class WorkerTeam
{
    private const int SpinMicroseconds = 200;

    private static readonly Lazy<WorkerTeam> SharedLazy = new(() => new WorkerTeam(Environment.ProcessorCount - 1));

    private readonly object gate = new();
    private readonly object runLock = new();
    private readonly int workerCount;
    private Action<int>? body;
    private int pieces;
    private int nextPiece;
    private int running;
    // generation × 1024 + participating workers, published in one write so a worker never pairs one call's generation
    // with another call's participant count.
    private long ticket;
    private Exception? failure;

    private WorkerTeam(int workers)
    {
        workerCount = Math.Max(0, workers);
        for (var i = 0; i < workerCount; i++)
        {
            var index = i;
            new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"k2-kernels-{i + 1}" }.Start();
        }
    }

    /// <summary>One team per process: ProcessorCount − 1 workers beside the caller.</summary>
    public static WorkerTeam Shared => SharedLazy.Value;

    /// <summary>
    /// Runs body(0 … pieces − 1) on the caller and up to <paramref name="threads"/> − 1 workers, and returns when every
    /// piece is done (rethrowing the first exception as it was thrown). A call made while another thread's call is
    /// running runs inline.
    /// </summary>
    public void Run(int pieces, int threads, Action<int> body)
    {
        var helpers = Math.Min(Math.Min(threads - 1, workerCount), 1023);
        if (pieces <= 1 || helpers <= 0 || !Monitor.TryEnter(runLock))
        {
            for (var p = 0; p < pieces; p++)
            {
                body(p);
            }
            return;
        }
        try
        {
            this.body = body;
            this.pieces = pieces;
            failure = null;
            Volatile.Write(ref nextPiece, 0);
            Volatile.Write(ref running, helpers);
            lock (gate)
            {
                Volatile.Write(ref ticket, ((ticket >> 10) + 1 << 10) | (long)helpers);
                Monitor.PulseAll(gate);
            }
            TakePieces();
            var spinner = new SpinWait();
            while (Volatile.Read(ref running) > 0)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
            this.body = null;
            if (failure is not null)
            {
                ExceptionDispatchInfo.Capture(failure).Throw();
            }
        }
        finally
        {
            Monitor.Exit(runLock);
        }
    }

    private void TakePieces()
    {
        int p;
        while ((p = Interlocked.Increment(ref nextPiece) - 1) < pieces)
        {
            try
            {
                body!(p);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
        }
    }

    private void WorkerLoop(int index)
    {
        long seen = 0;
        var spinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            // SpinOnce yields the core now and then (never sleeps): another process's thread waiting for this core, such
            // as the vision worker's beside the decoder's in `kosmos2 up`, gets it instead of waiting out the spin.
            var spinner = new SpinWait();
            while (Volatile.Read(ref ticket) == seen)
            {
                if (Stopwatch.GetTimestamp() - start < spinTicks)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                lock (gate)
                {
                    while (Volatile.Read(ref ticket) == seen)
                    {
                        Monitor.Wait(gate);
                    }
                }
            }
            seen = Volatile.Read(ref ticket);
            if (index < (seen & 1023))
            {
                TakePieces();
                Interlocked.Decrement(ref running);
            }
        }
    }
}
