using System.Diagnostics.Metrics;
using Kosmos2.DecoderWorker.Hosting;

namespace Kosmos2.DecoderWorker;

/// <summary>
/// The decoder's metrics: OpenTelemetry GenAI names where they exist (time to first token, time per output
/// token, request duration), plus engine load (running, waiting, KV slots), step duration, batch size, rejections.
/// </summary>
public sealed class DecoderMetrics
{
    public const string MeterName = "Kosmos2.DecoderWorker";

    public DecoderMetrics(Meter meter, EngineHost host)
    {
        TimeToFirstToken = meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s", "Time from arrival to the first generated token.");
        TimePerOutputToken = meter.CreateHistogram<double>("gen_ai.server.time_per_output_token", "s", "Time per generated token after the first.");
        RequestDuration = meter.CreateHistogram<double>("gen_ai.server.request.duration", "s", "Time from arrival to the last token.");
        QueueTime = meter.CreateHistogram<double>("kosmos2.decoder.queue_time", "s", "Time waiting for a KV slot.");
        StepDuration = meter.CreateHistogram<double>("kosmos2.decoder.step.duration", "s", "Duration of one engine step (prefill chunks + one batched decode).");
        BatchSize = meter.CreateHistogram<int>("kosmos2.decoder.batch_size", description: "Decode rows per step.");
        Rejections = meter.CreateCounter<long>("kosmos2.decoder.rejections", description: "Requests refused at submit, by reason.");
        Outcomes = meter.CreateCounter<long>("kosmos2.decoder.requests", description: "Finished requests, by finish reason.");
        host.StepExecuted += (duration, batch) =>
        {
            StepDuration.Record(duration.TotalSeconds);
            BatchSize.Record(batch);
        };
        meter.CreateObservableGauge("kosmos2.decoder.running_requests", () => host.Stats?.Running ?? 0, description: "Sequences in the running batch.");
        meter.CreateObservableGauge("kosmos2.decoder.waiting_requests", () => host.Stats?.Waiting ?? 0, description: "Requests waiting for admission.");
        meter.CreateObservableGauge("kosmos2.decoder.kv_slots_in_use", () => host.Stats?.SlotsInUse ?? 0, description: "KV slots held by sequences.");
        meter.CreateObservableCounter("kosmos2.decoder.prefix_cache.hits", () => host.Stats?.Prefix.Hits ?? 0,
            description: "Admissions that reused KV rows of a cached or running sequence over the same image and ids.");
        meter.CreateObservableCounter("kosmos2.decoder.prefix_cache.misses", () => host.Stats?.Prefix.Misses ?? 0,
            description: "Admissions that prefilled their whole prompt while the prefix cache was on.");
        meter.CreateObservableCounter("kosmos2.decoder.prefix_cache.evictions", () => host.Stats?.Prefix.Evictions ?? 0,
            description: "Cached sequences dropped for room (least recently used first).");
        meter.CreateObservableCounter("kosmos2.decoder.prefix_cache.tokens_saved", () => host.Stats?.Prefix.TokensSaved ?? 0,
            description: "Prompt tokens reused from the prefix cache instead of prefilled.");
        meter.CreateObservableGauge("kosmos2.decoder.prefix_cache.cached_slots", () => host.Stats?.Prefix.CachedSlots ?? 0,
            description: "Idle KV slots holding a finished sequence's rows (reclaimable).");
        meter.CreateObservableGauge("kosmos2.decoder.prefix_cache.cached_tokens", () => host.Stats?.Prefix.CachedTokens ?? 0,
            description: "Tokens the cached slots hold.");
    }

    public Histogram<double> TimeToFirstToken { get; }

    public Histogram<double> TimePerOutputToken { get; }

    public Histogram<double> RequestDuration { get; }

    public Histogram<double> QueueTime { get; }

    public Histogram<double> StepDuration { get; }

    public Histogram<int> BatchSize { get; }

    public Counter<long> Rejections { get; }

    public Counter<long> Outcomes { get; }
}
