using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.DecoderWorker.Hosting;
using Kosmos2.DecoderWorker.Execution;
using Kosmos2.Engine;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.DecoderWorker;

/// <summary>
/// The internal <c>kosmos2.internal.v1.DecoderWorker</c> service. Generate validates, submits to the engine (a
/// refusal is RESOURCE_EXHAUSTED before any message, so the gateway can retry elsewhere), then relays the
/// engine's events from a per-call channel to the response stream; a cancelled call aborts its sequence, which
/// leaves the batch at the next step.
/// </summary>
public sealed class DecoderWorkerService(EngineHost host, DecoderWorkerOptions options, DecoderMetrics metrics, ReadinessGate readiness)
    : Contracts.Internal.V1.DecoderWorker.DecoderWorkerBase
{
    public override async Task Generate(DecodeRequest request, IServerStreamWriter<DecodeResponse> responseStream, ServerCallContext context)
    {
        if (host.Info is not { } info)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "The decoder is still loading: retry shortly or on another worker."));
        }
        var generation = ToGenerationRequest(request, info);
        var sink = new ChannelSink();
        var submitted = host.Submit(generation, sink);
        if (!submitted.IsAccepted)
        {
            metrics.Rejections.Add(1, new KeyValuePair<string, object?>("reason", submitted.Rejection.ToString()));
            Refuse(submitted);
        }

        using var abort = context.CancellationToken.Register(() => host.Abort(submitted.RequestId));
        var pending = new DecodeResponse();
        await foreach (var item in sink.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (item.Result is null)
            {
                pending.TokenIds.Add((uint)item.Token);
                if (item.Logprobs is { } logprobs)
                {
                    pending.Logprobs.Add(ToProto(logprobs));
                }
                // Send what has arrived so far in one message: several tokens can queue while a write is in flight.
                if (sink.Reader.TryPeek(out var next) && next.Result is null)
                {
                    continue;
                }
                await WriteAsync(responseStream, pending, context).ConfigureAwait(false);
                pending = new DecodeResponse();
                continue;
            }
            await FinishAsync(item.Result, pending, responseStream, context).ConfigureAwait(false);
            return;
        }
    }

    private static DecodeLogprob ToProto(TokenLogprobs logprobs)
    {
        var proto = new DecodeLogprob { Logprob = logprobs.Logprob };
        proto.TopTokenIds.Add(logprobs.TopTokenIds.Select(t => (uint)t));
        proto.TopLogprobs.Add(logprobs.TopLogprobs);
        return proto;
    }

    public override Task<DecoderInfo> GetInfo(DecoderInfoRequest request, ServerCallContext context)
    {
        var stats = host.Stats;
        var info = new DecoderInfo
        {
            MaxRunning = (uint)options.MaxRunning,
            MaxWaiting = (uint)options.MaxWaiting,
            MaxSequenceTokens = (uint)options.MaxSequenceTokens,
            KvSlotsTotal = (uint)options.MaxRunning,
            Ready = readiness.IsReady,
            Running = (uint)(stats?.Running ?? 0),
            Waiting = (uint)(stats?.Waiting ?? 0),
            KvSlotsInUse = (uint)(stats?.SlotsInUse ?? 0),
            Steps = (ulong)(stats?.StepsCompleted ?? 0),
            LiveTensors = (ulong)host.LiveTensors,
            ResidentBytes = (ulong)Environment.WorkingSet,
        };
        if (options.PrefixCacheSlots > 0 && stats is { Prefix: var prefix })
        {
            info.PrefixCache = new PrefixCacheInfo
            {
                CapacitySlots = (uint)Math.Min(options.PrefixCacheSlots, options.MaxRunning),
                CachedSlots = (uint)prefix.CachedSlots,
                CachedTokens = (ulong)prefix.CachedTokens,
                Hits = (ulong)prefix.Hits,
                Misses = (ulong)prefix.Misses,
                Evictions = (ulong)prefix.Evictions,
                TokensSaved = (ulong)prefix.TokensSaved,
            };
        }
        if (host.Info is { } loaded)
        {
            info.Model = new ModelIdentity { ModelId = loaded.Identity.ModelId, Fingerprint = loaded.Identity.Fingerprint, Dtype = loaded.Identity.DType, Device = loaded.Identity.Device };
            info.VocabSize = (uint)loaded.VocabSize;
        }
        return Task.FromResult(info);
    }

    private async Task FinishAsync(GenerationResult result, DecodeResponse final, IServerStreamWriter<DecodeResponse> stream, ServerCallContext context)
    {
        metrics.Outcomes.Add(1, new KeyValuePair<string, object?>("finish_reason", result.Reason.ToString()));
        switch (result.Reason)
        {
            case FinishReason.Aborted:
                throw new RpcException(new Status(
                    context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
                    "The request was cancelled or its deadline passed; its sequence left the batch."));
            case FinishReason.Error:
                throw new RpcException(new Status(StatusCode.Internal, $"The decoder failed during this request: {result.Error}"));
            case FinishReason.Refused:
                throw new RpcException(new Status(StatusCode.Unavailable,
                    "This decoder is shutting down and had not started the request: nothing was generated; retry on another worker."));
            case FinishReason.QueueTimedOut when result.ForecastQueueWait is { } forecast:
                throw RpcErrors.ResourceExhaustedException(
                    $"This decoder is full: the request would wait about {forecast.TotalMilliseconds:0} ms for a free slot, more than " +
                    $"{options.MaxQueueWaitMs} ms (Decoder:MaxQueueWaitMs): nothing was generated; retry after the hint or on another worker.",
                    forecast);
            case FinishReason.QueueTimedOut:
                throw RpcErrors.ResourceExhaustedException(
                    $"The request waited longer than {options.MaxQueueWaitMs} ms (Decoder:MaxQueueWaitMs) for a free slot: nothing was generated; " +
                    "retry after the hint or on another worker.");
        }
        RecordTimings(result);
        var timings = result.Timings;
        final.Final = new DecodeFinal
        {
            FinishReason = result.Reason switch
            {
                FinishReason.Eos => DecodeFinishReason.Eos,
                FinishReason.Length => DecodeFinishReason.Length,
                FinishReason.StopSequence => DecodeFinishReason.StopSequence,
                _ => DecodeFinishReason.Unspecified,
            },
            Usage = new DecodeUsage
            {
                PromptTokens = (uint)result.PromptTokens,
                GeneratedTokens = (uint)result.GeneratedTokenIds.Count,
                CachedPromptTokens = (uint)result.CachedPromptTokens,
            },
            Timings = new DecodeTimings
            {
                QueueMs = timings.Queue.TotalMilliseconds,
                PrefillMs = timings.Prefill.TotalMilliseconds,
                TtftMs = timings.TimeToFirstToken.TotalMilliseconds,
                DecodeMs = timings.Decode.TotalMilliseconds,
            },
        };
        await WriteAsync(stream, final, context).ConfigureAwait(false);
    }

    private void RecordTimings(GenerationResult result)
    {
        var t = result.Timings;
        metrics.TimeToFirstToken.Record(t.TimeToFirstToken.TotalSeconds);
        metrics.QueueTime.Record(t.Queue.TotalSeconds);
        metrics.RequestDuration.Record((t.TimeToFirstToken + t.Decode).TotalSeconds);
        if (result.GeneratedTokenIds.Count > 1)
        {
            metrics.TimePerOutputToken.Record(t.Decode.TotalSeconds / (result.GeneratedTokenIds.Count - 1));
        }
    }

    private static async Task WriteAsync(IServerStreamWriter<DecodeResponse> stream, DecodeResponse message, ServerCallContext context)
    {
        try
        {
            await stream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The client went away mid-write; the registration above already aborted the sequence.
            throw new RpcException(new Status(StatusCode.Cancelled, "The client cancelled the call."));
        }
    }

    /// <summary>
    /// Decodes the proto into the engine's request, checking only what needs the loaded model (ids in the vocabulary,
    /// embeddings of its width, a grounding vocabulary); the engine validates the rest once, at submit.
    /// </summary>
    private static GenerationRequest ToGenerationRequest(DecodeRequest request, EngineInfo info)
    {
        var ids = new int[request.InputIds.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            var id = request.InputIds[i];
            if (id >= (uint)info.VocabSize)
            {
                RpcErrors.InvalidArgument($"input_ids[{i}] = {id} is outside the vocabulary (size {info.VocabSize}).");
            }
            ids[i] = (int)id;
        }
        var stopping = request.Stopping ?? new DecodeStopping();
        var stops = stopping.StopSequences.Where(s => s.TokenIds.Count > 0).Select(s => s.TokenIds.Select(t => (int)t).ToArray()).ToList();
        var embeddings = request.ImageEmbeddings is { Data.Length: > 0 } tensor ? ToEmbeddings(tensor, info, request.PrefixCacheNamespace) : null;
        var sampling = request.Sampling ?? new DecodeSampling();
        if (sampling.ConstrainGrounding && !Sampling.GroundingVocabulary.Supports(info.VocabSize))
        {
            RpcErrors.InvalidArgument($"sampling.constrain_grounding needs a Kosmos-2 vocabulary (tags and 1,024 patch tokens); this model has {info.VocabSize} ids.");
        }
        return new GenerationRequest(
            ids,
            new StoppingParameters((int)Math.Min(stopping.MaxNewTokens, int.MaxValue), stops, stopping.IgnoreEos),
            new SamplingParameters(
                sampling.Temperature,
                (int)Math.Min(sampling.TopK, int.MaxValue),
                sampling.TopP == 0 ? 1f : sampling.TopP, // proto 0 = unset = off
                sampling.RepetitionPenalty == 0 ? 1f : sampling.RepetitionPenalty,
                sampling.Seed,
                sampling.ConstrainGrounding,
                sampling.ReturnLogprobs,
                (int)Math.Min(sampling.TopLogprobs, int.MaxValue)),
            embeddings,
            (int)Math.Min(request.ImageOffset, int.MaxValue));
    }

    private static ReceivedEmbeddings ToEmbeddings(TensorBytes tensor, EngineInfo info, string prefixCacheNamespace)
    {
        var elementSize = tensor.Dtype switch
        {
            TensorDType.Float32 => 4,
            TensorDType.Bfloat16 => 2,
            _ => 0,
        };
        if (elementSize == 0)
        {
            RpcErrors.InvalidArgument("image_embeddings.dtype must be FLOAT32 or BFLOAT16.");
        }
        if (tensor.Shape.Count != 2 || tensor.Shape[1] != (uint)info.HiddenSize || tensor.Shape[0] == 0)
        {
            RpcErrors.InvalidArgument($"image_embeddings.shape must be [rows, {info.HiddenSize}] (got [{string.Join(", ", tensor.Shape)}]).");
        }
        var rows = (int)tensor.Shape[0];
        if (tensor.Data.Length != rows * info.HiddenSize * elementSize)
        {
            RpcErrors.InvalidArgument($"image_embeddings.data holds {tensor.Data.Length} bytes; [{rows}, {info.HiddenSize}] of {tensor.Dtype} needs {rows * info.HiddenSize * elementSize}.");
        }
        return new ReceivedEmbeddings(tensor.Dtype, rows, info.HiddenSize, tensor.Data.ToByteArray(), prefixCacheNamespace);
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Refuse(SubmitResult submitted)
    {
        var message = submitted.Message ?? "The decoder cannot take this request.";
        throw submitted.Rejection switch
        {
            RejectionReason.QueueFull => RpcErrors.ResourceExhaustedException(message),
            RejectionReason.ShuttingDown => new RpcException(new Status(StatusCode.Unavailable, message)),
            RejectionReason.TooLong => new RpcException(new Status(StatusCode.InvalidArgument, $"{message} (Decoder:MaxSequenceTokens)")),
            _ => new RpcException(new Status(StatusCode.InvalidArgument, message)),
        };
    }

    /// <summary>Engine events for one call; written on the engine thread (never blocks: unbounded), read by the call.</summary>
    private sealed class ChannelSink : IRequestSink
    {
        private readonly Channel<(int Token, TokenLogprobs? Logprobs, GenerationResult? Result)> _channel =
            Channel.CreateUnbounded<(int, TokenLogprobs?, GenerationResult?)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public ChannelReader<(int Token, TokenLogprobs? Logprobs, GenerationResult? Result)> Reader => _channel.Reader;

        public void OnToken(int tokenId) => OnToken(tokenId, null);

        public void OnToken(int tokenId, TokenLogprobs? logprobs) => _channel.Writer.TryWrite((tokenId, logprobs, null));

        public void OnFinished(GenerationResult result)
        {
            _channel.Writer.TryWrite((0, null, result));
            _channel.Writer.TryComplete();
        }
    }
}
