using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kosmos2.VisionWorker.Encoding;

/// <summary>Batching settings of the encoder thread; <paramref name="MaxBatch"/> 0 = by device (<see cref="EncoderLoop.AutoMaxBatch"/>).</summary>
public sealed record EncoderLoopOptions(int MaxBatch, TimeSpan MaxWait, int MaxQueue);

/// <summary>The outcome of one image's encode: its bytes, the size of the batch it rode in, and timings.</summary>
public sealed record EncodedImage(byte[] Embeddings, int BatchSize, double QueueMs, double ForwardMs);

/// <summary>
/// One dedicated thread owns the vision model and all its tensors. Requests queue here; the thread takes
/// the first waiting request, gathers up to <see cref="EncoderLoopOptions.MaxBatch"/> − 1 more that arrive
/// within <see cref="EncoderLoopOptions.MaxWait"/>, and runs one batched forward for all of them.
/// </summary>
public sealed partial class EncoderLoop : IDisposable
{
    private readonly BlockingCollection<WorkItem> _queue;
    private readonly EncoderLoopOptions _options;
    private readonly Func<IVisionEncoder> _createEncoder;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly TaskCompletionSource<IVisionEncoder> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _forwardMs;
    private int _maxBatch;
    private long _forwards;
    private long _imagesEncoded;
    private int _disposed;

    public EncoderLoop(Func<IVisionEncoder> createEncoder, EncoderLoopOptions options, Meter meter, ILogger<EncoderLoop> logger)
    {
        _createEncoder = createEncoder;
        _options = options;
        _logger = logger;
        _queue = new BlockingCollection<WorkItem>(new ConcurrentQueue<WorkItem>(), options.MaxQueue);
        _batchSize = meter.CreateHistogram<int>("kosmos2.vision.batch_size", description: "Images per vision forward.");
        _forwardMs = meter.CreateHistogram<double>("kosmos2.vision.encode.duration", "ms", "Duration of one batched vision forward.");
        meter.CreateObservableGauge("kosmos2.vision.queue_length", () => _queue.Count, description: "Images waiting for the encoder thread.");
        _thread = new Thread(Run) { IsBackground = true, Name = "vision-encoder" };
        _thread.Start();
    }

    /// <summary>Completes when the model is loaded and a warm-up forward passed (faults when loading failed).</summary>
    public Task<IVisionEncoder> Ready => _ready.Task;

    /// <summary>Most images in one forward: the setting, or once the model is loaded, its device's default; 0 before that when auto.</summary>
    public int MaxBatch => Volatile.Read(ref _maxBatch) is > 0 and var resolved ? resolved : _options.MaxBatch;

    /// <summary>
    /// Images per forward when <c>Vision:MaxBatch</c> is 0 (auto): one on a CPU, four on a GPU. On a CPU one image's
    /// forward (257 positions through 24 layers) already keeps every core's vector units busy, so a batch only makes its
    /// first image wait for the others: 8 concurrent new images on the 2-core bench machine, full size bf16, 3 interleaved
    /// rounds, ran at 1.81 img/s one per forward and 1.68 img/s four per forward (0.93×). A GPU needs the batch to fill.
    /// </summary>
    public static int AutoMaxBatch(string device) => device.StartsWith("cpu", StringComparison.OrdinalIgnoreCase) ? 1 : 4;

    /// <summary>Forwards run so far (each may cover several images).</summary>
    public long Forwards => Interlocked.Read(ref _forwards);

    /// <summary>Images encoded so far.</summary>
    public long ImagesEncoded => Interlocked.Read(ref _imagesEncoded);

    public int QueueLength => _queue.Count;

    /// <summary>Queues one image; false when the queue is full (the caller answers RESOURCE_EXHAUSTED).</summary>
    public bool TryEnqueue(float[] pixelValues, CancellationToken cancellationToken, out Task<EncodedImage> result)
    {
        var item = new WorkItem(pixelValues, Stopwatch.GetTimestamp(), cancellationToken);
        result = item.Completion.Task;
        return !_queue.IsAddingCompleted && _queue.TryAdd(item);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        _queue.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _queue.Dispose();
    }

    private void Run()
    {
        IVisionEncoder encoder;
        try
        {
            encoder = _createEncoder();
            Volatile.Write(ref _maxBatch, _options.MaxBatch > 0 ? _options.MaxBatch : AutoMaxBatch(encoder.Identity.Device));
            LogBatch(_logger, MaxBatch, _options.MaxBatch, encoder.Identity.Device);
            var warmup = Stopwatch.StartNew();
            encoder.Encode([new float[3 * 224 * 224]]);
            LogWarm(_logger, warmup.Elapsed.TotalMilliseconds);
            _ready.SetResult(encoder);
        }
        catch (Exception ex)
        {
            LogLoadFailed(_logger, ex);
            _ready.SetException(ex);
            return;
        }

        using (encoder)
        {
            var batch = new List<WorkItem>(MaxBatch);
            while (TakeBatch(batch))
            {
                RunBatch(encoder, batch);
                batch.Clear();
            }
        }
    }

    /// <summary>Blocks for the first item, then gathers more for at most MaxWait; false when shutting down.</summary>
    private bool TakeBatch(List<WorkItem> batch)
    {
        WorkItem first;
        try
        {
            first = _queue.Take();
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        batch.Add(first);
        var deadline = Stopwatch.GetTimestamp() + (long)(_options.MaxWait.TotalSeconds * Stopwatch.Frequency);
        while (batch.Count < MaxBatch)
        {
            var left = (int)Math.Max(0, (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency);
            if (!_queue.TryTake(out var next, left))
            {
                break;
            }
            batch.Add(next);
        }
        return true;
    }

    private void RunBatch(IVisionEncoder encoder, List<WorkItem> batch)
    {
        // A request cancelled while it waited does not ride in the forward.
        batch.RemoveAll(item =>
        {
            if (!item.Cancellation.IsCancellationRequested)
            {
                return false;
            }
            item.Completion.TrySetCanceled(item.Cancellation);
            return true;
        });
        if (batch.Count == 0)
        {
            return;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            var outputs = encoder.Encode(batch.Select(b => b.PixelValues).ToList());
            var forwardMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Interlocked.Increment(ref _forwards);
            Interlocked.Add(ref _imagesEncoded, batch.Count);
            _batchSize.Record(batch.Count);
            _forwardMs.Record(forwardMs);
            for (var i = 0; i < batch.Count; i++)
            {
                var queueMs = Stopwatch.GetElapsedTime(batch[i].EnqueuedAt, started).TotalMilliseconds;
                batch[i].Completion.TrySetResult(new EncodedImage(outputs[i], batch.Count, queueMs, forwardMs));
            }
        }
        catch (Exception ex)
        {
            LogForwardFailed(_logger, ex, batch.Count);
            foreach (var item in batch)
            {
                item.Completion.TrySetException(ex);
            }
        }
    }

    private sealed record WorkItem(float[] PixelValues, long EnqueuedAt, CancellationToken Cancellation)
    {
        public TaskCompletionSource<EncodedImage> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Vision model warm: warm-up forward took {Milliseconds:F0} ms")]
    private static partial void LogWarm(ILogger logger, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Vision batches: at most {MaxBatch} images per forward (Vision:MaxBatch = {Setting}; 0 = by device, here {Device})")]
    private static partial void LogBatch(ILogger logger, int maxBatch, int setting, string device);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Vision model failed to load")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Vision forward failed for a batch of {Count}")]
    private static partial void LogForwardFailed(ILogger logger, Exception exception, int count);
}
