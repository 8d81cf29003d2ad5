using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.DecoderWorker.Engine;
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
        var pending = new List<uint>();
        await foreach (var item in sink.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (item.Result is null)
            {
                pending.Add((uint)item.Token);
                // Send what has arrived so far in one message: several tokens can queue while a write is in flight.
                if (sink.Reader.TryPeek(out var next) && next.Result is null)
                {
                    continue;
                }
                var message = new DecodeResponse();
                message.TokenIds.Add(pending);
                pending.Clear();
                await WriteAsync(responseStream, message, context).ConfigureAwait(false);
                continue;
            }
            await FinishAsync(item.Result, pending, responseStream, context).ConfigureAwait(false);
            return;
        }
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
        if (host.Info is { } loaded)
        {
            info.Model = new ModelIdentity { ModelId = loaded.ModelId, Dtype = loaded.DType, Device = loaded.Device };
            info.VocabSize = (uint)loaded.VocabSize;
        }
        return Task.FromResult(info);
    }

    private async Task FinishAsync(GenerationResult result, List<uint> pending, IServerStreamWriter<DecodeResponse> stream, ServerCallContext context)
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
        }
        RecordTimings(result);
        var timings = result.Timings;
        var final = new DecodeResponse
        {
            Final = new DecodeFinal
            {
                FinishReason = result.Reason switch
                {
                    FinishReason.Eos => DecodeFinishReason.Eos,
                    FinishReason.Length => DecodeFinishReason.Length,
                    FinishReason.StopSequence => DecodeFinishReason.StopSequence,
                    _ => DecodeFinishReason.Unspecified,
                },
                Usage = new DecodeUsage { PromptTokens = (uint)result.PromptTokens, GeneratedTokens = (uint)result.GeneratedTokenIds.Count },
                Timings = new DecodeTimings
                {
                    QueueMs = timings.Queue.TotalMilliseconds,
                    PrefillMs = timings.Prefill.TotalMilliseconds,
                    TtftMs = timings.TimeToFirstToken.TotalMilliseconds,
                    DecodeMs = timings.Decode.TotalMilliseconds,
                },
            },
        };
        final.TokenIds.Add(pending);
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

    private GenerationRequest ToGenerationRequest(DecodeRequest request, EngineInfo info)
    {
        if (request.InputIds.Count == 0)
        {
            RpcErrors.InvalidArgument("input_ids is empty: send the prompt's token ids.");
        }
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
        if (stopping.MaxNewTokens == 0)
        {
            RpcErrors.InvalidArgument("stopping.max_new_tokens must be > 0.");
        }
        if (ids.Length + (long)stopping.MaxNewTokens > options.MaxSequenceTokens)
        {
            RpcErrors.InvalidArgument($"The prompt ({ids.Length} tokens) + max_new_tokens ({stopping.MaxNewTokens}) exceeds this decoder's {options.MaxSequenceTokens}-token context (Decoder:MaxSequenceTokens).");
        }
        var stops = stopping.StopSequences.Where(s => s.TokenIds.Count > 0).Select(s => s.TokenIds.Select(t => (int)t).ToArray()).ToList();

        ReceivedEmbeddings? embeddings = null;
        if (request.ImageEmbeddings is { Data.Length: > 0 } tensor)
        {
            embeddings = ToEmbeddings(tensor, info);
            if (request.ImageOffset + embeddings.Rows > ids.Length)
            {
                RpcErrors.InvalidArgument($"image_offset {request.ImageOffset} + {embeddings.Rows} image rows runs past the prompt's {ids.Length} tokens.");
            }
        }

        var sampling = request.Sampling ?? new DecodeSampling();
        if (sampling.Temperature < 0 || sampling.TopP < 0 || sampling.TopP > 1 || sampling.RepetitionPenalty < 0)
        {
            RpcErrors.InvalidArgument("sampling: temperature and repetition_penalty must be ≥ 0 and top_p in [0, 1].");
        }
        return new GenerationRequest(
            ids,
            new StoppingParameters((int)stopping.MaxNewTokens, stops, stopping.IgnoreEos),
            new SamplingParameters(
                sampling.Temperature,
                (int)sampling.TopK,
                sampling.TopP == 0 ? 1f : sampling.TopP,
                sampling.RepetitionPenalty == 0 ? 1f : sampling.RepetitionPenalty,
                sampling.Seed),
            embeddings,
            (int)request.ImageOffset,
            request.RequestId);
    }

    private static ReceivedEmbeddings ToEmbeddings(TensorBytes tensor, EngineInfo info)
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
        return new ReceivedEmbeddings(tensor.Dtype, rows, info.HiddenSize, tensor.Data.ToByteArray());
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Refuse(SubmitResult submitted) => throw new RpcException(new Status(
        submitted.Rejection switch
        {
            RejectionReason.QueueFull => StatusCode.ResourceExhausted,
            RejectionReason.ShuttingDown => StatusCode.Unavailable,
            _ => StatusCode.InvalidArgument,
        },
        submitted.Message ?? "The decoder cannot take this request."));

    /// <summary>Engine events for one call; written on the engine thread (never blocks: unbounded), read by the call.</summary>
    private sealed class ChannelSink : IRequestSink
    {
        private readonly Channel<(int Token, GenerationResult? Result)> _channel =
            Channel.CreateUnbounded<(int, GenerationResult?)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public ChannelReader<(int Token, GenerationResult? Result)> Reader => _channel.Reader;

        public void OnToken(int tokenId) => _channel.Writer.TryWrite((tokenId, null));

        public void OnFinished(GenerationResult result)
        {
            _channel.Writer.TryWrite((0, result));
            _channel.Writer.TryComplete();
        }
    }
}
