using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionEmbeddings: patch conv (no bias), class token, learned positions.</summary>
public sealed class Kosmos2VisionEmbeddings : nn.Module<Tensor, Tensor>, IParameterOwner
{
    [ComponentName(Name = "class_embedding")]
    private Parameter _classEmbedding; // [Dv]

    [ComponentName(Name = "patch_embedding")]
    private readonly Conv2d _patchEmbedding; // weight [Dv, 3, 14, 14], no bias

    [ComponentName(Name = "position_embedding")]
    private readonly Embedding _positionEmbedding; // weight [257, Dv]

    public Kosmos2VisionEmbeddings(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionEmbeddings))
    {
        _classEmbedding = new Parameter(torch.randn(config.HiddenSize, dtype: dtype, device: device), requires_grad: false);
        _patchEmbedding = nn.Conv2d(config.NumChannels, config.HiddenSize, kernel_size: config.PatchSize,
            stride: config.PatchSize, bias: false, device: device, dtype: dtype);
        _positionEmbedding = nn.Embedding(config.NumPositions, config.HiddenSize, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>pixel_values [B, 3, 224, 224] → [B, 257, Dv] (class token first, then patches row-major).</summary>
    public override Tensor forward(Tensor pixelValues)
    {
        using var scope = NewDisposeScope();
        var weight = _patchEmbedding.weight!;
        var patches = _patchEmbedding.forward(pixelValues.to(weight.dtype)); // [B, Dv, 16, 16]
        patches = patches.flatten(2).transpose(1, 2); // [B, 256, Dv]
        var b = patches.shape[0];
        var cls = _classEmbedding.view(1, 1, -1).expand(b, 1, -1);
        var x = torch.cat([cls, patches], dim: 1) + _positionEmbedding.weight!.unsqueeze(0);
        return x.MoveToOuterDisposeScope();
    }

    void IParameterOwner.SetParameter(string name, Parameter value)
    {
        if (name != "class_embedding")
        {
            throw new ArgumentException($"Kosmos2VisionEmbeddings has no raw parameter '{name}'.", nameof(name));
        }
        _classEmbedding.Dispose();
        _classEmbedding = value;
        ConditionallyRegisterParameter(name, value);
    }
}
