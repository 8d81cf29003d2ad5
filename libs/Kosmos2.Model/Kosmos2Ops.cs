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
