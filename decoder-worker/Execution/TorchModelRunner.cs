using System.Runtime.InteropServices;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.DecoderWorker.Sampling;
using Kosmos2.Engine;
using Kosmos2.Model;
using Kosmos2.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.DecoderWorker.Execution;

/// <summary>
/// The engine's model runner: owns the model, the preallocated KV pool and each slot's sampler. Every call comes
/// from the engine thread. Each step is one forward (<see cref="Kosmos2Model.Step"/>): all decode rows and prompt
/// chunks share one read of the weights — the point of continuous batching.
/// </summary>
public sealed class TorchModelRunner : IModelRunner, IDisposable
{
    private readonly Kosmos2Model _model;
    private readonly Kosmos2KvCache _cache;
    private readonly TokenSampler?[] _samplers;
    private readonly GroundingVocabulary? _grounding;
    private readonly Action<TimeSpan, int>? _stepExecuted;
    private float[] _logits = [];

    /// <param name="stepExecuted">Told each step's duration and decode batch size (metrics).</param>
    public TorchModelRunner(Kosmos2Model model, int slots, int maxSequenceTokens, Action<TimeSpan, int>? stepExecuted = null)
    {
        _stepExecuted = stepExecuted;
        _model = model;
        _cache = model.CreateKvCache(slots, maxSequenceTokens);
        _samplers = new TokenSampler?[slots];
        var vocab = model.Config.Text.VocabSize;
        _grounding = GroundingVocabulary.Supports(vocab) ? GroundingVocabulary.FromVocabSize(vocab) : null;
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
        foreach (var copy in plan.Copies)
        {
            // Before anything of this step is written: copies read rows as the previous step left them.
            _cache.CopyPrefix(copy.SourceSlot, copy.TargetSlot, copy.Tokens);
        }
        var prefills = new List<PrefillPart>(plan.Prefills.Count);
        foreach (var chunk in plan.Prefills)
        {
            prefills.Add(ToPrefillPart(chunk));
        }
        var n = plan.Decodes.Count;
        var slots = new int[n];
        var tokens = new long[n];
        var positions = new int[n];
        for (var i = 0; i < n; i++)
        {
            slots[i] = plan.Decodes[i].Slot;
            tokens[i] = plan.Decodes[i].TokenId;
            positions[i] = plan.Decodes[i].Position;
        }

        // One forward for the whole step: decode rows first, then each last chunk's final token ([R, V] float32).
        var logits = _model.Step(_cache, slots, tokens, positions, prefills);
        var vocab = logits is null ? 0 : (int)logits.shape[1];
        var all = logits is null ? [] : HostLogits(logits.to(torch.CPU));
        var decodeTokens = new int[n];
        TokenLogprobs?[]? decodeLogprobs = null;
        for (var i = 0; i < n; i++)
        {
            var row = plan.Decodes[i];
            var picked = _samplers[slots[i]]!.Next(all.AsSpan(i * vocab, vocab), row.Request.Stopping.MaxNewTokens - row.GeneratedTokenIds.Count);
            decodeTokens[i] = picked.TokenId;
            if (picked.Logprobs is not null)
            {
                (decodeLogprobs ??= new TokenLogprobs?[n])[i] = picked.Logprobs;
            }
        }
        var prefillTokens = new int[plan.Prefills.Count];
        TokenLogprobs?[]? prefillLogprobs = null;
        var next = n;
        for (var i = 0; i < plan.Prefills.Count; i++)
        {
            var chunk = plan.Prefills[i];
            if (!chunk.IsLast)
            {
                prefillTokens[i] = -1;
                continue;
            }
            var picked = _samplers[chunk.Slot]!.Next(all.AsSpan(next++ * vocab, vocab), chunk.Request.Stopping.MaxNewTokens);
            prefillTokens[i] = picked.TokenId;
            if (picked.Logprobs is not null)
            {
                (prefillLogprobs ??= new TokenLogprobs?[plan.Prefills.Count])[i] = picked.Logprobs;
            }
        }
        return new StepOutput(prefillTokens, decodeTokens, prefillLogprobs, decodeLogprobs);
    }

    /// <summary>
    /// The step's logits in <see cref="_logits"/>, reused from step to step (grown when a step has more rows): a fresh
    /// array per step cost 13–20 ms at 16 rows on a VM, where first writes to new pages are slow (<see cref="HostCopy"/>).
    /// </summary>
    private float[] HostLogits(Tensor logits)
    {
        var count = checked((int)logits.NumberOfElements);
        if (_logits.Length < count)
        {
            _logits = new float[count];
        }
        HostCopy.CopyTo(logits, _logits.AsSpan(0, count));
        return _logits;
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

    /// <summary>
    /// A chunk as the model takes it; the first chunk of a prompt also resets the slot (keeping the rows it reuses from
    /// the prefix cache) and creates its sampler.
    /// </summary>
    private PrefillPart ToPrefillPart(PrefillChunk chunk)
    {
        var request = chunk.Request;
        if (chunk.IsFirst)
        {
            if (chunk.ReusedTokens == 0)
            {
                _cache.Reset(chunk.Slot);
            }
            var sampling = request.Sampling ?? SamplingParameters.Greedy;
            if (sampling.ConstrainGrounding && _grounding is null)
            {
                // Unreachable through the service, which refuses such a request with INVALID_ARGUMENT before submitting.
                throw new ArgumentException($"constrain_grounding needs a Kosmos-2 vocabulary; this model has {_model.Config.Text.VocabSize} ids.");
            }
            _samplers[chunk.Slot] = new TokenSampler(
                sampling,
                request.PromptTokenIds.Span,
                sampling.ConstrainGrounding ? new GroundingGrammar(_grounding!) : null);
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
        return new PrefillPart(chunk.Slot, ids, chunk.Start, image, request.ImageOffset, Logits: chunk.IsLast);
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
