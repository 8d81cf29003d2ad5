using Kosmos2.Model.Text;
using Kosmos2.Model.Vision;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>
/// Mirrors transformers Kosmos2ForConditionalGeneration: the module tree whose state-dict keys are exactly the
/// checkpoint keys (SPEC §1.2). Built on any device/dtype; on the meta device it costs no memory (shape checks, and
/// the loader's placeholder before real tensors replace each parameter).
/// </summary>
public sealed class Kosmos2ForConditionalGeneration : nn.Module
{
    [ComponentName(Name = "vision_model")]
    private readonly Kosmos2VisionModel _visionModel;

    [ComponentName(Name = "image_to_text_projection")]
    private readonly Kosmos2ImageToTextProjection _imageToTextProjection;

    [ComponentName(Name = "text_model")]
    private readonly Kosmos2TextForCausalLM _textModel;

    public Kosmos2ForConditionalGeneration(Kosmos2Config config, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Kosmos2ForConditionalGeneration))
    {
        Config = config;
        _visionModel = new Kosmos2VisionModel(config.Vision, device, dtype);
        _imageToTextProjection = new Kosmos2ImageToTextProjection(config, device, dtype);
        _textModel = new Kosmos2TextForCausalLM(config.Text, device, dtype);
        RegisterComponents();
    }

    public Kosmos2Config Config { get; }

    public Kosmos2VisionModel VisionModel => _visionModel;

    public Kosmos2ImageToTextProjection ImageToTextProjection => _imageToTextProjection;

    public Kosmos2TextForCausalLM TextModel => _textModel;

    /// <summary>The tied key: in HF's state dict, absent from the published file.</summary>
    public const string LmHeadKey = "text_model.lm_head.weight";
}
