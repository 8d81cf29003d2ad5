using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionModel: only a wrapper whose <c>model</c> field gives the key prefix.</summary>
public sealed class Kosmos2VisionModel : nn.Module
{
    [ComponentName(Name = "model")]
    private readonly Kosmos2VisionTransformer _model;

    public Kosmos2VisionModel(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionModel))
    {
        _model = new Kosmos2VisionTransformer(config, device, dtype);
        RegisterComponents();
    }

    /// <summary>The CLIP transformer (<c>vision_model.model</c>).</summary>
    public Kosmos2VisionTransformer Model => _model;
}
