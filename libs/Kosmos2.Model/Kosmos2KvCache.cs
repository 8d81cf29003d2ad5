using Kosmos2.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Preallocated key/value memory for many sequences: per decoder layer one K and one V tensor
/// [slots, heads, maxLength, headDim], written in place (index_put_/slice copy — never a torch.cat per step, which
/// would be O(n²) and hold one sequence per cache). A slot is one sequence; the engine owns which request holds which
/// slot. Keys are stored unscaled (HF: q carries head_dim^-0.5). This object owns the tensors and frees them on Dispose.
/// </summary>
public sealed class Kosmos2KvCache : IDisposable
{
    private readonly Tensor[] _keys; // per layer [slots, heads, maxLength, headDim]
    private readonly Tensor[] _values; // per layer [slots, heads, maxLength, headDim]
    private readonly int[] _lengths; // tokens written per slot (bookkeeping for callers; the math takes explicit positions)
    private bool _disposed;

    public Kosmos2KvCache(Kosmos2TextConfig config, int slots, int maxLength, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        Slots = slots;
        MaxLength = maxLength;
        Layers = config.Layers;
        DType = dtype;
        Device = device;
        _lengths = new int[slots];
        _keys = new Tensor[config.Layers];
        _values = new Tensor[config.Layers];
        using var noGrad = torch.no_grad();
        long[] shape = [slots, config.AttentionHeads, maxLength, config.HeadDim];
        for (var i = 0; i < config.Layers; i++)
        {
            // Zero-filled: positions never written are masked out, and zeros keep masked products finite.
            _keys[i] = torch.zeros(shape, dtype, device).DetachFromDisposeScope();
            _values[i] = torch.zeros(shape, dtype, device).DetachFromDisposeScope();
        }
    }

    public int Slots { get; }

    public int MaxLength { get; }

    public int Layers { get; }

    public ScalarType DType { get; }

    public Device Device { get; }

    /// <summary>Bytes held by the K and V tensors of all layers.</summary>
    public long Bytes => _keys.Sum(k => k.NumberOfElements * k.ElementSize) * 2;

    /// <summary>Tokens written into <paramref name="slot"/> so far (updated by prefill and decode calls).</summary>
    public int Length(int slot) => _lengths[slot];

    /// <summary>Marks a slot empty for its next sequence (old values stay but are never visible: reads stop at the length given).</summary>
    public void Reset(int slot) => _lengths[slot] = 0;

    internal void SetLength(int slot, int length) => _lengths[slot] = length;

    /// <summary>
    /// Copies cache indices [0, <paramref name="tokens"/>) of every layer's keys and values from slot
    /// <paramref name="source"/> to slot <paramref name="target"/> and sets the target's length to that: the target's
    /// sequence starts from the source's prefix (the decoder's prefix cache). 2 × layers slice copies; a 67-token image
    /// prefix of the full-size model is 24 × 2 × 67 × 2,048 bf16 values ≈ 13 MiB, far less than its prefill.
    /// </summary>
    public void CopyPrefix(int source, int target, int tokens)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tokens, MaxLength);
        if (source == target || tokens == 0)
        {
            _lengths[target] = tokens;
            return;
        }
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        for (var layer = 0; layer < Layers; layer++)
        {
            _keys[layer][target].narrow(1, 0, tokens).copy_(_keys[layer][source].narrow(1, 0, tokens));
            _values[layer][target].narrow(1, 0, tokens).copy_(_values[layer][source].narrow(1, 0, tokens));
        }
        _lengths[target] = tokens;
    }

    /// <summary>Layer K/V tensors, for tests and diagnostics ([slots, heads, maxLength, headDim]; owned by the cache).</summary>
    public (Tensor Keys, Tensor Values) Layer(int layer) => (_keys[layer], _values[layer]);

    /// <summary>Writes new keys/values k, v [B, H, T, hd] at each row's slot and start.</summary>
    internal void Write(int layer, DecoderBatch batch, Tensor k, Tensor v)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (batch.KeyLength > MaxLength)
        {
            throw new InvalidOperationException($"KV cache overflow: {batch.KeyLength} positions needed, {MaxLength} allocated per slot.");
        }
        using var scope = NewDisposeScope();
        var keys = _keys[layer];
        var values = _values[layer];
        if (batch.NewTokens == 1 && batch.Count > 1)
        {
            // One scatter per tensor for a decode step: cache[slot_b, :, pos_b, :] = k[b, :, 0, :].
            var slots = TensorIndex.Tensor(batch.SlotsTensor);
            var starts = TensorIndex.Tensor(batch.StartsTensor);
            keys.index_put_(k.squeeze(2), slots, TensorIndex.Colon, starts);
            values.index_put_(v.squeeze(2), slots, TensorIndex.Colon, starts);
            return;
        }
        for (var b = 0; b < batch.Count; b++)
        {
            keys[batch.Slots[b]].narrow(1, batch.Starts[b], batch.NewTokens).copy_(k[b]);
            values[batch.Slots[b]].narrow(1, batch.Starts[b], batch.NewTokens).copy_(v[b]);
        }
    }

    /// <summary>
    /// Keys and values [A, H, L, hd] for the batch's attention rows (<see cref="DecoderBatch.AttentionRows"/>): a view of
    /// a slot range when the batch reads one, else a gather of its slots.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Read(int layer, DecoderBatch batch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var keys = _keys[layer].narrow(2, 0, batch.KeyLength);
        var values = _values[layer].narrow(2, 0, batch.KeyLength);
        if (batch.ReadsSlotRange)
        {
            return (keys.narrow(0, batch.RangeStart, batch.AttentionRows), values.narrow(0, batch.RangeStart, batch.AttentionRows));
        }
        return (keys.index_select(0, batch.SlotsTensor), values.index_select(0, batch.SlotsTensor));
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var t in _keys.Concat(_values))
        {
            t.Dispose();
        }
    }
}
