using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli.Batch;

/// <summary>The result of one item: a report, or the status and message it failed with.</summary>
internal sealed record BatchOutcome(BatchItem Item, GenerationReport? Report, string Status, string? Error, byte[]? ImageBytes)
{
    public const string Ok = "OK";

    public bool Succeeded => Report is not null;
}

/// <summary>What every request of a run shares.</summary>
internal sealed record BatchRunSettings(StoppingParameters Stopping, SamplingParameters? Sampling, int MaxConcurrency, int MaxRetries);

/// <summary>
/// Sends items through one gateway connection concurrently (<see cref="AdaptiveConcurrency"/>), retries refusals after
/// the server's hint (RESOURCE_EXHAUSTED: <c>grpc-retry-pushback-ms</c> / <c>retry-after</c>; UNAVAILABLE: backoff),
/// and hands every outcome to the caller as it completes. A failure is an outcome, never an exception; only
/// cancellation stops the run, and an item cut short by it has no outcome (a rerun sends it again).
/// </summary>
internal sealed class BatchRunner(GatewayConnection gateway, BatchRunSettings settings)
{
    /// <summary>
    /// Decoder slots per worker when the server does not say (the decoder's default <c>Decoder:MaxRunning</c>). Twice
    /// that is kept in flight, so the next requests are already through vision and queued when a slot frees.
    /// </summary>
    public const int SlotsPerDecoder = 16;

    public AdaptiveConcurrency? Concurrency { get; private set; }

    /// <summary>
    /// A run as the <c>batch</c> and <c>eval</c> commands make it: Ctrl-C (SIGINT) or SIGTERM stops sending and ends it
    /// cleanly instead of killing the process; <paramref name="onOutcome"/> sees every outcome before the progress does.
    /// Returns null when every item ran, else the exit code with its reason printed: 130 interrupted (then
    /// <paramref name="whenInterrupted"/>), 1 when the gateway refused the run itself (the sizing GetInfo).
    /// </summary>
    public static async Task<int?> RunCommandAsync(CommandLine cli, BatchRunSettings settings, IReadOnlyList<BatchItem> items,
        BatchProgress progress, Action<BatchOutcome> onOutcome, Func<string> whenInterrupted)
    {
        using var interrupt = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            // Not the default (exit at once): stop sending, let the writer finish its line, exit 130.
            context.Cancel = true;
            interrupt.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var gateway = new GatewayConnection(cli);
        var runner = new BatchRunner(gateway, settings);
        progress.Concurrency = () => runner.Concurrency?.Limit ?? 0;
        try
        {
            await runner.RunAsync(items, outcome =>
            {
                onOutcome(outcome);
                progress.Add(outcome);
                return Task.CompletedTask;
            }, interrupt.Token);
        }
        catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
        {
            progress.Finish();
            Console.Error.WriteLine(whenInterrupted());
            return 130;
        }
        catch (RpcException ex)
        {
            // Only the sizing call fails this way: every generation's failure is an outcome.
            progress.Dispose();
            Console.Error.WriteLine(GatewayConnection.Describe(ex));
            return 1;
        }
        progress.Finish();
        return null;
    }

    /// <summary>The starting concurrency: <c>--concurrency</c>, else two per decoder slot the gateway reports.</summary>
    public async Task<int> SizeAsync(CancellationToken cancellationToken)
    {
        if (settings.MaxConcurrency > 0)
        {
            return settings.MaxConcurrency;
        }
        var info = await gateway.Client.GetInfoAsync(new GetInfoRequest(), gateway.Headers, cancellationToken: cancellationToken);
        return 2 * SlotsPerDecoder * (int)Math.Max(1, info.DecoderWorkers);
    }

    public async Task RunAsync(IReadOnlyList<BatchItem> items, Func<BatchOutcome, Task> onOutcome, CancellationToken cancellationToken)
    {
        var initial = await SizeAsync(cancellationToken);
        Concurrency = new AdaptiveConcurrency(initial, initial);
        var running = new List<Task>();
        try
        {
            foreach (var item in items)
            {
                await Concurrency.WaitAsync(cancellationToken);
                running.Add(RunOneAsync(item, onOutcome, cancellationToken));
                running.RemoveAll(t => t.IsCompletedSuccessfully);
                if (running.Any(t => t.IsFaulted))
                {
                    break;
                }
            }
        }
        finally
        {
            // Whatever is in flight ends (or is cancelled) before the caller closes the output.
            await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        // Only the caller's own handler can fault (e.g. the output file's disk is full): that stops the run.
        running.FirstOrDefault(t => t.IsFaulted)?.GetAwaiter().GetResult();
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task RunOneAsync(BatchItem item, Func<BatchOutcome, Task> onOutcome, CancellationToken cancellationToken)
    {
        try
        {
            var outcome = await SendAsync(item, cancellationToken);
            if (outcome.Succeeded)
            {
                Concurrency!.OnSuccess();
            }
            await onOutcome(outcome);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Interrupted: nothing is written for this item.
        }
        finally
        {
            Concurrency!.Release();
        }
    }

    private async Task<BatchOutcome> SendAsync(BatchItem item, CancellationToken cancellationToken)
    {
        byte[] imageBytes;
        try
        {
            imageBytes = await File.ReadAllBytesAsync(item.ImagePath, cancellationToken);
        }
        catch (IOException ex)
        {
            return new BatchOutcome(item, null, "IMAGE_UNREADABLE", ex.Message, null);
        }
        catch (UnauthorizedAccessException ex)
        {
            return new BatchOutcome(item, null, "IMAGE_UNREADABLE", ex.Message, null);
        }
        var request = item.ToRequest();
        request.Image = new Image { Data = ByteString.CopyFrom(imageBytes) };
        request.Stopping = settings.Stopping;
        if (settings.Sampling is not null)
        {
            request.Sampling = settings.Sampling;
        }
        var overloadedSince = (DateTime?)null;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var call = gateway.Client.Generate(request, gateway.Headers, cancellationToken: cancellationToken);
                var (result, elapsed) = await GatewayConnection.StreamAsync(call, echo: null);
                return new BatchOutcome(item, GatewayConnection.ToReport(result, elapsed), BatchOutcome.Ok, null, imageBytes);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted
                                          && DateTime.UtcNow - (overloadedSince ??= DateTime.UtcNow) < OverloadPatience)
            {
                // Full is not failed: wait for the server's hint with the place given up (holding it while waiting kept
                // as many requests in flight as before, and 20 quick retries ran out while a full vision queue drained).
                Concurrency!.OnRefused();
                Concurrency.Release();
                try
                {
                    await Task.Delay(RetryDelay(ex, attempt), cancellationToken);
                }
                finally
                {
                    // Back in line even when cancelled, so the caller's Release stays balanced.
                    await Concurrency.WaitAsync(CancellationToken.None);
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && attempt < settings.MaxRetries)
            {
                await Task.Delay(RetryDelay(ex, attempt), cancellationToken);
            }
            catch (RpcException ex)
            {
                var described = GatewayConnection.Describe(ex);
                return new BatchOutcome(item, null, described[..described.IndexOf(':', StringComparison.Ordinal)], ex.Status.Detail, imageBytes);
            }
        }
    }

    /// <summary>How long one input may keep being refused as RESOURCE_EXHAUSTED before it is recorded as failed.</summary>
    internal static readonly TimeSpan OverloadPatience = TimeSpan.FromMinutes(10);

    /// <summary>The server's hint when it gave one (pushback in ms, else retry-after in s); else 0.25 s doubled per attempt, at most 8 s.</summary>
    internal static TimeSpan RetryDelay(RpcException ex, int attempt)
    {
        if (long.TryParse(ex.Trailers.GetValue("grpc-retry-pushback-ms"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
        {
            return TimeSpan.FromMilliseconds(ms);
        }
        if (int.TryParse(ex.Trailers.GetValue("retry-after"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }
        return TimeSpan.FromMilliseconds(Math.Min(8000, 250 * Math.Pow(2, attempt)));
    }
}
