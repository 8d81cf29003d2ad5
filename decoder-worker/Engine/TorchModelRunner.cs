using System.Runtime.InteropServices;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Engine;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.DecoderWorker.Engine;

/// <summary>
/// The engine's model runner: owns the model, the preallocated KV pool and each slot's sampler. Every call comes
/// from the engine thread. Per step: each prefill chunk is one forward into its slot; all decode rows are one
/// batched forward (one read of the weights for the whole batch — the point of continuous batching).
/// </summary>
public sealed class TorchModelRunner : IModelRunner, IDisposable
{
    private readonly Kosmos2Model _model;
    private readonly Kosmos2KvCache _cache;
    private readonly TokenSampler?[] _samplers;
    private readonly Action<TimeSpan, int>? _stepExecuted;

    /// <param name="stepExecuted">Told each step's duration and decode batch size (metrics).</param>
    public TorchModelRunner(Kosmos2Model model, int slots, int maxSequenceTokens, Action<TimeSpan, int>? stepExecuted = null)
    {
        _stepExecuted = stepExecuted;
        _model = model;
        _cache = model.CreateKvCache(slots, maxSequenceTokens);
        _samplers = new TokenSampler?[slots];
    }

    public Kosmos2Model Model => _model;

    public long KvBytes => _cache.Bytes;

    public StepOutput Execute(StepPlan plan)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var output = ExecuteCore(plan);
        _stepExecuted?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(started), plan.Decodes.Count);
        return output;
    }

    private StepOutput ExecuteCore(StepPlan plan)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var prefillTokens = new int[plan.Prefills.Count];
        for (var i = 0; i < plan.Prefills.Count; i++)
        {
            prefillTokens[i] = RunPrefill(plan.Prefills[i]);
        }

        var decodeTokens = new int[plan.Decodes.Count];
        if (plan.Decodes.Count > 0)
        {
            var slots = new int[plan.Decodes.Count];
            var tokens = new long[plan.Decodes.Count];
            var positions = new int[plan.Decodes.Count];
            for (var i = 0; i < plan.Decodes.Count; i++)
            {
                slots[i] = plan.Decodes[i].Slot;
                tokens[i] = plan.Decodes[i].TokenId;
                positions[i] = plan.Decodes[i].Position;
            }
            var logits = _model.DecodeStep(_cache, slots, tokens, positions).to(torch.CPU).contiguous(); // [n, V] float32
            var vocab = (int)logits.shape[1];
            var all = logits.data<float>().ToArray();
            for (var i = 0; i < plan.Decodes.Count; i++)
            {
                decodeTokens[i] = _samplers[slots[i]]!.Next(all.AsSpan(i * vocab, vocab));
            }
        }
        return new StepOutput(prefillTokens, decodeTokens);
    }

    public void Release(int slot)
    {
        _samplers[slot] = null;
        _cache.Reset(slot);
    }

    public void Dispose()
    {
        _cache.Dispose();
        _model.Dispose();
    }

    private int RunPrefill(PrefillChunk chunk)
    {
        var request = chunk.Request;
        if (chunk.Start == 0)
        {
            _cache.Reset(chunk.Slot);
            var sampling = request.Sampling ?? SamplingParameters.Greedy;
            _samplers[chunk.Slot] = new TokenSampler(
                new SamplingSettings(sampling.Temperature, sampling.TopK, sampling.TopP, sampling.RepetitionPenalty, sampling.Seed),
                request.PromptTokenIds.Span);
        }
        var ids = new long[chunk.Length];
        var source = chunk.TokenIds;
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = source[i];
        }
        Tensor? image = null;
        if (request.ImageEmbeddings is ReceivedEmbeddings embeddings
            && chunk.Start < request.ImageOffset + embeddings.Rows && chunk.End > request.ImageOffset)
        {
            image = ToTensor(embeddings);
        }
        var logits = _model.Prefill(_cache, chunk.Slot, ids, chunk.Start, image, request.ImageOffset);
        if (!chunk.IsLast)
        {
            return -1;
        }
        var row = logits.to(torch.CPU).to(ScalarType.Float32).contiguous().data<float>().ToArray();
        return _samplers[chunk.Slot]!.Next(row);
    }

    /// <summary>Bytes → [Rows, Columns] in the model's dtype. bfloat16 widens exactly to float32 on the way (131k values: ~0.1 ms).</summary>
    private Tensor ToTensor(ReceivedEmbeddings embeddings)
    {
        var values = new float[embeddings.Rows * embeddings.Columns];
        switch (embeddings.DType)
        {
            case TensorDType.Float32:
                MemoryMarshal.Cast<byte, float>(embeddings.Data).CopyTo(values);
                break;
            case TensorDType.Bfloat16:
                var halves = MemoryMarshal.Cast<byte, ushort>(embeddings.Data);
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = BitConverter.UInt32BitsToSingle((uint)halves[i] << 16);
                }
                break;
            default:
                throw new ArgumentException($"Unsupported embeddings dtype {embeddings.DType}.");
        }
        return torch.tensor(values, [embeddings.Rows, embeddings.Columns]).to(_model.DType).to(_model.Device);
    }
}
