using System.Diagnostics.Metrics;
using Kosmos2.Model;
using Kosmos2.Processing.Images;
using Kosmos2.ServiceDefaults;
using Kosmos2.VisionWorker.Caching;
using Kosmos2.VisionWorker.Encoding;
using StackExchange.Redis;

namespace Kosmos2.VisionWorker;

/// <summary>Registers the vision worker's services.</summary>
public static class VisionWorkerExtensions
{
    public const string MeterName = "Kosmos2.VisionWorker";

    public static WebApplicationBuilder AddVisionWorker(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(VisionWorkerOptions.SectionName).Get<VisionWorkerOptions>() ?? new VisionWorkerOptions();
        ModelSource.Validate(options, VisionWorkerOptions.SectionName);
        builder.Services.AddSingleton(options);
        // An image up to the configured limit must reach validation (which names the limit) instead of gRPC's 4 MB default.
        builder.Services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<VisionWorkerService>>(o =>
            o.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, options.MaxImageBytes + (1 << 20)));
        var meter = new Meter(MeterName);
        builder.Services.AddSingleton(meter);
        if (RedisConnection.ConnectOrNull(builder.Configuration, RedisConnection.Cache) is { } redis)
        {
            builder.Services.AddSingleton(redis);
        }
        builder.Services.AddSingleton(sp => new EmbeddingCache(options.Cache, sp.GetService<IConnectionMultiplexer>(), sp.GetRequiredService<Meter>(), sp.GetRequiredService<ILogger<EmbeddingCache>>()));
        builder.Services.AddSingleton(sp =>
        {
            var progressLogger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Kosmos2.VisionWorker.ModelLoad");
            if (options.IsRandom)
            {
                progressLogger.LogWarning("{Warning}", ModelSource.RandomWeightsWarning(options, VisionWorkerOptions.SectionName));
            }
            return new EncoderLoop(
                () =>
                {
                    var threads = TorchThreads.Apply(options.Threads);
                    progressLogger.LogInformation("libtorch intra-op threads: {Threads} (Vision:Threads = {Requested}; 0 = the CPUs this process may use)",
                        threads, options.Threads);
                    var encoder = TorchVisionEncoder.Load(options, threads, new SynchronousProgress(progressLogger), out var kernels);
                    progressLogger.LogInformation("Vision bf16 encoder and projection: {Kernels} (Vision:Kernels = {Setting})", kernels, options.Kernels);
                    return encoder;
                },
                new EncoderLoopOptions(options.MaxBatch, TimeSpan.FromMilliseconds(options.MaxBatchWaitMs), options.MaxQueue),
                sp.GetRequiredService<Meter>(),
                sp.GetRequiredService<ILogger<EncoderLoop>>());
        });
        var limits = Limits(options);
        var concurrentDecodes = options.MaxConcurrentDecodes == 0 ? Environment.ProcessorCount : options.MaxConcurrentDecodes;
        builder.Services.AddSingleton(new DecodeGate(concurrentDecodes, options.MaxWaitingDecodes, meter));
        builder.Services.AddSingleton(sp => new VisionEncodeHandler(
            sp.GetRequiredService<EncoderLoop>(),
            sp.GetRequiredService<DecodeGate>(),
            sp.GetRequiredService<EmbeddingCache>(),
            options,
            limits,
            string.IsNullOrWhiteSpace(options.Cache.StoreDType) ? EmbeddingDTypes.Parse(options.DType) : EmbeddingDTypes.Parse(options.Cache.StoreDType)));
        builder.Services.AddHostedService<VisionStartup>();
        return builder;
    }

    private static ImageLimits Limits(VisionWorkerOptions options)
    {
        var formats = ImageFormats.None;
        foreach (var name in options.Formats.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            formats |= name.ToLowerInvariant() switch
            {
                "png" => ImageFormats.Png,
                "jpeg" or "jpg" => ImageFormats.Jpeg,
                "webp" => ImageFormats.Webp,
                "gif" => ImageFormats.Gif,
                "bmp" => ImageFormats.Bmp,
                _ => throw new InvalidOperationException($"Vision:Formats has an unknown format '{name}' (known: png, jpeg, webp, gif, bmp)."),
            };
        }
        if (options.MaxImagePixels < 1)
        {
            throw new InvalidOperationException($"Vision:MaxImagePixels must be at least 1 (got {options.MaxImagePixels}).");
        }
        if (!(options.MaxImageAspectRatio >= 1) || double.IsInfinity(options.MaxImageAspectRatio))
        {
            throw new InvalidOperationException($"Vision:MaxImageAspectRatio must be a number ≥ 1, e.g. 64 for 64:1 (got {options.MaxImageAspectRatio}).");
        }
        if (options.MaxConcurrentDecodes < 0 || options.MaxWaitingDecodes < 0)
        {
            throw new InvalidOperationException(
                $"Vision:MaxConcurrentDecodes (0 = the CPUs this process may use) and Vision:MaxWaitingDecodes must not be negative (got {options.MaxConcurrentDecodes}, {options.MaxWaitingDecodes}).");
        }
        return new ImageLimits
        {
            MaxBytes = options.MaxImageBytes,
            MaxPixels = options.MaxImagePixels,
            MaxAspectRatio = options.MaxImageAspectRatio,
            AllowedFormats = formats,
        };
    }

    /// <summary>Logs progress on the loading thread itself (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SynchronousProgress(ILogger logger) : IProgress<string>
    {
        public void Report(string value) => logger.LogInformation("{Progress}", value);
    }
}

/// <summary>Ready only after the model is loaded and a warm-up forward passed; a model that cannot load stops the process.</summary>
internal sealed class VisionStartup(EncoderLoop encoder, ReadinessGate readiness, IHostApplicationLifetime lifetime, ILogger<VisionStartup> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        readiness.GateReadinessAsync(encoder.Ready, "Vision worker", lifetime, logger, stoppingToken);
}
