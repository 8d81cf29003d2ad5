using Kosmos2.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>Small numeric building blocks shared by the modules.</summary>
internal static class Kosmos2Ops
{
    /// <summary>
    /// LayerNorm computed in float32 whatever the weights' dtype: in bfloat16 the mean/variance of 2048–8192 values
    /// lose several bits (HF's CPU kernel accumulates in float too), so half-precision inputs are upcast.
    /// </summary>
    public static Tensor LayerNorm(Tensor x, LayerNorm norm)
    {
        var weight = norm.weight!;
        var bias = norm.bias!;
        if (x.dtype is ScalarType.Float32 or ScalarType.Float64)
        {
            return nn.functional.layer_norm(x, norm.normalized_shape, weight, bias, norm.eps);
        }
        using var scope = NewDisposeScope();
        var y = nn.functional.layer_norm(x.to(ScalarType.Float32), norm.normalized_shape,
            weight.to(ScalarType.Float32), bias.to(ScalarType.Float32), norm.eps);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Rows up to which <see cref="Linear"/> takes the weight-major forms (decode batches; prefill stays on linear).</summary>
    public const int WeightMajorMaxRows = 16;

    /// <summary>
    /// x [.., in] · weightᵀ [out, in] (+ bias [out]) for decode-shaped products. For a weight at least as tall as it is
    /// wide (fused q/k/v, fc1, out_proj, lm_head) and few rows it reads the weight as the row-major left operand:
    /// <c>mv(W, x)</c> for one row, <c>addmm(b, W, xᵀ)ᵀ</c> for 2..16 rows. Measured here (bf16, median of 15 interleaved
    /// runs, 2 threads): [8192, 2048] at m = 1 linear 1.38 ms (24 GB/s) vs mv 1.00 ms (33 GB/s); [6144, 2048] 1.05 vs
    /// 0.80 ms; at m = 16 linear 1.29 vs addmm 0.99 ms; 1 thread the same ratios (12 → 17 GB/s). A wide weight
    /// ([2048, 8192] fc2) is the other way round (linear 1.37 ms, mv 1.73 ms), as is m ≥ 71 (a tie), so those keep
    /// <c>linear</c>. float32 keeps <c>linear</c> too: there mv ties (22 GB/s at 1 thread, [6144, 2048]) and addmm loses at
    /// m = 4 (4.7 → 6.1 ms) while winning at m = 16 (10.1 → 7.2 ms) — no rule worth the risk for a non-serving dtype.
    /// With <paramref name="kernels"/> (Decoder:Kernels = native) a bf16 CPU product goes to <see cref="Bf16Kernels"/>
    /// instead: batch-invariant, and one weight read for all rows at any row count; <paramref name="packed"/>: the
    /// weight is in <see cref="Bf16Kernels.Pack"/>'s layout (the decoder's and the vision encoder's weights while native kernels run).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, Bf16Kernels? kernels = null, bool packed = false)
    {
        if (kernels is not null && NativeOps.Takes(x, weight))
        {
            return NativeOps.Linear(kernels, x, weight, bias, packed: packed);
        }
        if (packed)
        {
            throw new InvalidOperationException("A packed weight takes the native kernels (UseKernels unpacks the weights when it drops them).");
        }
        var outFeatures = weight.shape[0];
        var inFeatures = weight.shape[1];
        var rows = x.NumberOfElements / inFeatures;
        if (outFeatures < inFeatures || rows > WeightMajorMaxRows || weight.dtype != ScalarType.BFloat16 || x.dtype != weight.dtype)
        {
            return nn.functional.linear(x, weight, bias);
        }
        using var scope = NewDisposeScope();
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        Tensor y;
        if (rows == 1)
        {
            y = torch.mv(weight, x.reshape(inFeatures));
            if (bias is not null)
            {
                y.add_(bias);
            }
        }
        else
        {
            var xt = x.reshape(rows, inFeatures).t();
            y = (bias is null ? torch.mm(weight, xt) : torch.addmm(bias.unsqueeze(1), weight, xt, 1, 1)).t().contiguous();
        }
        return y.view(shape).MoveToOuterDisposeScope();
    }

    /// <summary>CLIP's <c>quick_gelu</c>: x·sigmoid(1.702·x) (not erf GELU).</summary>
    public static Tensor QuickGelu(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x * torch.sigmoid(x * 1.702)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// softmax(q·kᵀ·head_dim^-0.5 + mask)·v. HF multiplies q by head_dim^-0.5 before the product; SDPA applies the same
    /// factor (a power of two for head size 64), and its CPU kernels accumulate bfloat16 in float32.
    /// </summary>
    /// <param name="q">[B, H, T, hd] unscaled queries.</param>
    /// <param name="k">[B, H, L, hd].</param>
    /// <param name="v">[B, H, L, hd].</param>
    /// <param name="mask">[B, 1, T, L] additive mask in q's dtype, or null for no mask.</param>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? mask) =>
        nn.functional.scaled_dot_product_attention(q, k, v, mask);

    /// <summary>
    /// Unmasked attention on merged heads (the vision encoder's self-attention, the projection's cross-attention):
    /// q [B, T, H·hd], k and v [B, L, H·hd] → [B, T, H·hd]. On <paramref name="kernels"/> where they take it (bf16 on the
    /// CPU, an even head size; <see cref="NativeOps.FullAttentionInto"/>), else libtorch's SDPA. libtorch's ran on the one
    /// thread it keeps beside the kernels: ~85 ms of a ~420 ms ViT-L encode on the 2-core Zen 5.
    /// </summary>
    public static Tensor FullAttention(Tensor q, Tensor k, Tensor v, int heads, Bf16Kernels? kernels)
    {
        if (kernels is not null && NativeOps.Takes(q, k) && NativeOps.Takes(k, v) && NativeOps.TakesFullAttention(q.shape[^1], heads))
        {
            var attended = torch.empty_like(q);
            NativeOps.FullAttentionInto(kernels, q.contiguous(), k.contiguous(), v.contiguous(), heads, attended);
            return attended;
        }
        return MergeHeads(Attention(SplitHeads(q, heads), SplitHeads(k, heads), SplitHeads(v, heads), null));
    }

    /// <summary>[B, T, H·hd] → [B, H, T, hd].</summary>
    public static Tensor SplitHeads(Tensor x, int heads)
    {
        var b = x.shape[0];
        var t = x.shape[1];
        return x.view(b, t, heads, -1).transpose(1, 2);
    }

    /// <summary>[B, H, T, hd] → [B, T, H·hd].</summary>
    public static Tensor MergeHeads(Tensor x)
    {
        var b = x.shape[0];
        var t = x.shape[2];
        return x.transpose(1, 2).reshape(b, t, -1);
    }

    /// <summary>The most negative finite value of a dtype: HF's additive mask value (<c>torch.finfo(dtype).min</c>).</summary>
    public static double MaskMin(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        ScalarType.Float64 => double.MinValue,
        _ => float.MinValue,
    };
}
