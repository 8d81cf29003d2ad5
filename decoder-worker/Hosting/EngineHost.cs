using System.Diagnostics;
using Kosmos2.DecoderWorker.Execution;
using Kosmos2.Engine;
using Kosmos2.Model;
using TorchSharp;

namespace Kosmos2.DecoderWorker.Hosting;

/// <summary>
/// Owns the engine thread: loads the model and preallocates the KV pool on it, warms up, then runs the engine loop
/// until shutdown. Every tensor lives and dies on that thread; gRPC handlers only call <see cref="Submit"/> and
/// <see cref="Abort"/>, which are thread-safe and tensor-free.
/// </summary>
public sealed partial class EngineHost : IDisposable
{
    private readonly DecoderWorkerOptions _options;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private volatile GenerationEngine? _engine;
    private volatile EngineInfo? _info;
    private long _liveTensors;
    private int _disposed;

    public EngineHost(DecoderWorkerOptions options, ILogger<EngineHost> logger)
    {
        _options = options;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "decoder-engine" };
    }

    /// <summary>Completes when the model is loaded, the KV pool allocated and a warm-up step passed.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Raised on the engine thread after each step with its duration and decode batch size.</summary>
    public event Action<TimeSpan, int>? StepExecuted;

    /// <summary>What was loaded (null until ready).</summary>
    public EngineInfo? Info => _info;

    public void Start() => _thread.Start();

    public SubmitResult Submit(GenerationRequest request, IRequestSink sink) =>
        _engine is { } engine ? engine.Submit(request, sink) : new SubmitResult(0, RejectionReason.ShuttingDown, "The decoder is still loading.");

    public void Abort(long requestId) => _engine?.Abort(requestId);

    /// <summary>Drain: refuse new work and every request not yet admitted (UNAVAILABLE); running ones finish.</summary>
    public void StopAdmitting() => _engine?.StopAdmitting();

    public EngineStats? Stats => _engine?.GetStats();

    /// <summary>Tensors alive on the engine thread after the last step (leak detection).</summary>
    public long LiveTensors => Interlocked.Read(ref _liveTensors);

    /// <summary>Why health must say NOT_SERVING now, or null: not loaded yet, or work pending while the loop is stuck.</summary>
    public string? StallReason()
    {
        if (_engine is not { } engine)
        {
            return "loading the decoder";
        }
        var stats = engine.GetStats();
        var pending = stats.Running + stats.Waiting > 0;
        return pending && stats.SinceLastProgress > TimeSpan.FromSeconds(_options.StallTimeoutSeconds)
            ? $"engine loop has not advanced for {stats.SinceLastProgress.TotalSeconds:F0} s with {stats.Running + stats.Waiting} requests pending"
            : null;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        _stop.Cancel();
        if (_thread.IsAlive)
        {
            _thread.Join(TimeSpan.FromSeconds(30));
        }
        _stop.Dispose();
    }

    private void Run()
    {
        TorchModelRunner runner;
        GenerationEngine engine;
        try
        {
            var progress = new LogProgress(_logger);
            var watch = Stopwatch.StartNew();
            var threads = TorchThreads.Apply(_options.Threads);
            LogThreads(_logger, threads, _options.Threads);
            if (_options.IsRandom)
            {
                LogRandomWeights(_logger, ModelSource.RandomWeightsWarning(_options, DecoderWorkerOptions.SectionName));
            }
            var (model, identity) = ModelSource.Load(_options, Kosmos2Parts.Text, progress);
            var dtype = model.DType;
            var device = model.Device;
            var native = KernelChoice.Resolve(_options.Kernels, device, threads, out var kernels);
            model.TextDecoder.UseKernels(native);
            LogKernels(_logger, kernels, _options.Kernels, dtype == torch.ScalarType.BFloat16 ? "" : " (float32: libtorch runs every product)");
            if (native is not null && dtype == torch.ScalarType.BFloat16)
            {
                LogTorchBesideNative(_logger, TorchThreads.Apply(KernelChoice.TorchThreadsBesideNative), native.Threads);
            }
            runner = new TorchModelRunner(model, _options.MaxRunning, _options.MaxSequenceTokens, (duration, batch) =>
            {
                Interlocked.Exchange(ref _liveTensors, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
                StepExecuted?.Invoke(duration, batch);
            });
            LogLoaded(_logger, watch.Elapsed.TotalSeconds, runner.KvBytes / (1024.0 * 1024.0), _options.MaxRunning, _options.MaxSequenceTokens);
            WarmUp(runner);
            engine = new GenerationEngine(new EngineOptions
            {
                MaxRunning = _options.MaxRunning,
                MaxWaiting = _options.MaxWaiting,
                MaxSequenceTokens = _options.MaxSequenceTokens,
                MaxTokensPerStep = Math.Max(_options.MaxTokensPerStep, _options.MaxRunning),
                PrefixCacheSlots = Math.Max(0, _options.PrefixCacheSlots),
                MaxQueueWait = TimeSpan.FromMilliseconds(Math.Max(0, _options.MaxQueueWaitMs)),
                EosTokenId = model.Config.EosTokenId, // top-level, falling back to text_config (KOSMOS2_SPEC.md §2)
            }, runner);
            _info = new EngineInfo(identity, model.Config.Text.VocabSize, model.Config.Text.EmbedDim);
            _engine = engine;
            _ready.SetResult();
        }
        catch (Exception ex)
        {
            LogLoadFailed(_logger, ex);
            _ready.SetException(ex);
            return;
        }

        using (runner)
        using (engine)
        {
            try
            {
                engine.RunLoop(_stop.Token);
            }
            catch (Exception ex)
            {
                LogLoopFailed(_logger, ex);
            }
        }
    }

    /// <summary>
    /// One short prefill and three decode steps straight through the runner (not the engine's queue, which may be
    /// configured to hold nothing), so the first user does not pay for lazy initialisation.
    /// </summary>
    private void WarmUp(TorchModelRunner runner)
    {
        var watch = Stopwatch.StartNew();
        var prompt = new GenerationRequest(new int[] { 0, 4, 5, 6, 7, 8 }, new StoppingParameters(3));
        var output = runner.Execute(new StepPlan(0, [new PrefillChunk(0, 0, prompt, 0, prompt.PromptTokenIds.Length, IsLast: true)], []));
        var token = output.PrefillTokenIds[0];
        for (var step = 0; step < 3; step++)
        {
            var row = new DecodeRow(0, 0, token, prompt.PromptTokenIds.Length + step, prompt, []);
            token = runner.Execute(new StepPlan(step + 1, [], [row])).DecodeTokenIds[0];
        }
        runner.Release(0);
        LogWarm(_logger, watch.Elapsed.TotalMilliseconds);
    }

    private sealed class LogProgress(ILogger logger) : IProgress<string>
    {
        public void Report(string value) => LogProgressLine(logger, value);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Progress}")]
    private static partial void LogProgressLine(ILogger logger, string progress);

    [LoggerMessage(Level = LogLevel.Information, Message = "libtorch intra-op threads: {Threads} (Decoder:Threads = {Requested}; 0 = the CPUs this process may use)")]
    private static partial void LogThreads(ILogger logger, int threads, int requested);

    [LoggerMessage(Level = LogLevel.Information, Message = "libtorch intra-op threads now {Threads}: the native kernels run the products on {KernelThreads} threads (see KernelChoice.TorchThreadsBesideNative)")]
    private static partial void LogTorchBesideNative(ILogger logger, int threads, int kernelThreads);

    [LoggerMessage(Level = LogLevel.Information, Message = "Decoder kernels: {Kernels} (Decoder:Kernels = {Requested}){Float32}")]
    private static partial void LogKernels(ILogger logger, string kernels, string requested, string float32);

    [LoggerMessage(Level = LogLevel.Information, Message = "Decoder loaded in {Seconds:F1} s; KV pool {KvMiB:F0} MiB = {Slots} slots × {Tokens} tokens")]
    private static partial void LogLoaded(ILogger logger, double seconds, double kvMiB, int slots, int tokens);

    [LoggerMessage(Level = LogLevel.Information, Message = "Decoder warm: warm-up prefill and 3 decode steps took {Milliseconds:F0} ms")]
    private static partial void LogWarm(ILogger logger, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogRandomWeights(ILogger logger, string warning);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Decoder model failed to load")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Engine loop failed")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);
}

/// <summary>What the engine thread loaded.</summary>
public sealed record EngineInfo(ModelSourceIdentity Identity, int VocabSize, int HiddenSize);
