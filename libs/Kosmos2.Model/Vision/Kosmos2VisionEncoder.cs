using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Kosmos2.Model.Vision;

/// <summary>Mirrors transformers Kosmos2VisionEncoder: the stack of CLIP layers.</summary>
public sealed class Kosmos2VisionEncoder : nn.Module
{
    [ComponentName(Name = "layers")]
    private readonly ModuleList<Kosmos2VisionEncoderLayer> _layers;

    public Kosmos2VisionEncoder(Kosmos2VisionConfig config, Device? device, ScalarType? dtype)
        : base(nameof(Kosmos2VisionEncoder))
    {
        _layers = new ModuleList<Kosmos2VisionEncoderLayer>(
            Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new Kosmos2VisionEncoderLayer(config, device, dtype)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs every layer; <paramref name="hiddenStates"/>, when given, receives each layer's input.</summary>
    public Tensor Forward(Tensor hidden, List<Tensor>? hiddenStates)
    {
        using var scope = NewDisposeScope();
        var h = hidden;
        foreach (var layer in _layers)
        {
            hiddenStates?.Add(h.alias().DetachFromDisposeScope()); // owned by the caller
            h = layer.forward(h);
        }
        return h.alias().MoveToOuterDisposeScope();
    }
}
