using Kosmos2.Kernels;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionAttention (CLIP): 16 heads, softmax over all 257 tokens, no mask.</summary>
public sealed class Kosmos2VisionAttention : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "q_proj")]
    private readonly Linear _qProj; // [Dv, Dv]

    [ComponentName(Name = "k_proj")]
    private readonly Linear _kProj; // [Dv, Dv]

    [ComponentName(Name = "v_proj")]
    private readonly Linear _vProj; // [Dv, Dv]

    [ComponentName(Name = "out_proj")]
    private readonly Linear _outProj; // [Dv, Dv]

    private readonly int _heads;

    public Kosmos2VisionAttention(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionAttention))
    {
        var d = config.HiddenSize;
        _heads = config.NumAttentionHeads;
        _qProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _kProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _vProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        _outProj = nn.Linear(d, d, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    private readonly KernelBinding _native = new();

    /// <summary>
    /// Native bf16 kernels for the projections (null: libtorch); see <see cref="Kosmos2Model.UseVisionKernels"/>. With
    /// kernels, the four projection weights are packed in place for them when they can be, and restored without.
    /// </summary>
    internal Bf16Kernels? Kernels
    {
        get => _native.Kernels;
        set => _native.Use(value, _qProj.weight!, _kProj.weight!, _vProj.weight!, _outProj.weight!);
    }

    /// <summary>[B, 257, Dv] → [B, 257, Dv].</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        if (Kernels is { } kernels && NativeOps.Takes(hidden, _qProj.weight!) && NativeOps.TakesFullAttention(hidden.shape[^1], _heads))
        {
            return ForwardNative(kernels, hidden).MoveToOuterDisposeScope();
        }
        var q = Kosmos2Ops.SplitHeads(Kosmos2Ops.Linear(hidden, _qProj.weight!, _qProj.bias, Kernels, _native.Packed), _heads);
        var k = Kosmos2Ops.SplitHeads(Kosmos2Ops.Linear(hidden, _kProj.weight!, _kProj.bias, Kernels, _native.Packed), _heads);
        var v = Kosmos2Ops.SplitHeads(Kosmos2Ops.Linear(hidden, _vProj.weight!, _vProj.bias, Kernels, _native.Packed), _heads);
        var a = Kosmos2Ops.MergeHeads(Kosmos2Ops.Attention(q, k, v, null));
        return Kosmos2Ops.Linear(a, _outProj.weight!, _outProj.bias, Kernels, _native.Packed).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The same on the native kernels end to end: the attention too (<see cref="NativeOps.FullAttentionInto"/>), where
    /// libtorch's ran on the one thread it keeps beside the kernels: ~85 ms of a ~420 ms ViT-L encode on the 2-core Zen 5.
    /// </summary>
    private Tensor ForwardNative(Bf16Kernels kernels, Tensor hidden)
    {
        var q = NativeOps.Linear(kernels, hidden, _qProj.weight!, _qProj.bias, packed: _native.Packed); // [B, T, Dv]
        var keys = NativeOps.Linear(kernels, hidden, _kProj.weight!, _kProj.bias, packed: _native.Packed);
        var values = NativeOps.Linear(kernels, hidden, _vProj.weight!, _vProj.bias, packed: _native.Packed);
        var attended = empty_like(q);
        NativeOps.FullAttentionInto(kernels, q, keys, values, _heads, attended);
        return NativeOps.Linear(kernels, attended, _outProj.weight!, _outProj.bias, packed: _native.Packed);
    }
}
