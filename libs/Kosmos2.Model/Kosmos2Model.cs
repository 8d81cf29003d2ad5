using Kosmos2.Kernels;
using Kosmos2.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model;

/// <summary>Vision-side outputs for tests and diagnostics; the caller owns (disposes) the tensors.</summary>
/// <param name="HiddenStates">layers+1 × [B, 257, Dv]: after pre_layrnorm, each layer's input, encoder output.</param>
/// <param name="LastHiddenState">[B, 257, Dv] encoder output (no post-LN).</param>
/// <param name="ImageFeatures">[B, 257, Dv] post_layernorm on all tokens, L2-normalised.</param>
/// <param name="ImageEmbeds">[B, 64, D] projection output.</param>
public sealed record Kosmos2VisionOutputs(IReadOnlyList<Tensor> HiddenStates, Tensor LastHiddenState, Tensor ImageFeatures, Tensor ImageEmbeds) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in HiddenStates)
        {
            t.Dispose();
        }
        LastHiddenState.Dispose();
        ImageFeatures.Dispose();
        ImageEmbeds.Dispose();
    }
}

/// <summary>
/// A loaded Kosmos-2 on one device in one dtype: the single owner of the weights (disposes them). Entry points for
/// serving: <see cref="EncodeImages"/> (vision worker), <see cref="CreateKvCache"/> + <see cref="TextDecoder"/>
/// Prefill/DecodeStep (decoder worker). Not thread-safe: call it from the one thread that owns the tensors.
/// </summary>
public sealed class Kosmos2Model : IDisposable
{
    public Kosmos2Model(Kosmos2ForConditionalGeneration module, ScalarType dtype, Device device)
    {
        Module = module;
        DType = dtype;
        Device = device;
        module.eval();
        module.TextModel.PrepareForInference();
    }

    public Kosmos2ForConditionalGeneration Module { get; }

    public Kosmos2Config Config => Module.Config;

    public ScalarType DType { get; }

    public Device Device { get; }

    /// <summary>The text decoder (<c>text_model</c>): Prefill / DecodeStep / Forward.</summary>
    public Kosmos2TextForCausalLM TextDecoder => Module.TextModel;

    /// <summary>Loads a HF checkpoint folder (see <see cref="Kosmos2Checkpoint.Load"/>).</summary>
    public static Kosmos2Model Load(string directory, ScalarType dtype, Device device, IProgress<string>? progress = null,
        Kosmos2Parts parts = Kosmos2Parts.All) =>
        Kosmos2Checkpoint.Load(directory, dtype, device, progress, parts);

    /// <summary>
    /// A model with TorchSharp's default random initialisation, seeded (benchmarks, smoke tests: meaningless text, real
    /// shapes and costs).
    /// </summary>
    public static Kosmos2Model CreateRandom(Kosmos2Config config, ScalarType dtype, Device device, long seed = 1234)
    {
        torch.manual_seed(seed);
        using var noGrad = torch.no_grad();
        var module = new Kosmos2ForConditionalGeneration(config, device, dtype);
        foreach (var (_, parameter) in module.named_parameters())
        {
            parameter.requires_grad = false;
        }
        return new Kosmos2Model(module, dtype, device);
    }

    /// <summary>pixel_values [B, 3, 224, 224] (float32) → image_embeds [B, 64, D] in the model dtype.</summary>
    public Tensor EncodeImages(Tensor pixelValues)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var vision = Module.VisionModel.Model;
        var last = vision.Forward(pixelValues.to(Device));
        var features = NormalizedFeatures(last);
        return Module.ImageToTextProjection.forward(features).MoveToOuterDisposeScope();
    }

    /// <summary>Like <see cref="EncodeImages"/>, also returning the intermediate vision tensors (parity tests).</summary>
    public Kosmos2VisionOutputs EncodeImagesDetailed(Tensor pixelValues)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var vision = Module.VisionModel.Model;
        var hidden = new List<Tensor>();
        var last = vision.Forward(pixelValues.to(Device), hidden);
        var features = NormalizedFeatures(last);
        var embeds = Module.ImageToTextProjection.forward(features);
        return new Kosmos2VisionOutputs(hidden, last.MoveToOuterDisposeScope(), features.MoveToOuterDisposeScope(), embeds.MoveToOuterDisposeScope());
    }

    /// <summary>A KV pool of <paramref name="slots"/> sequences × <paramref name="maxLength"/> tokens in this model's dtype/device.</summary>
    public Kosmos2KvCache CreateKvCache(int slots, int maxLength) => new(Config.Text, slots, maxLength, DType, Device);

    /// <summary>See <see cref="Kosmos2TextForCausalLM.Prefill"/>.</summary>
    public Tensor Prefill(Kosmos2KvCache cache, int slot, ReadOnlySpan<long> inputIds, int startPos = 0, Tensor? imageEmbeds = null,
        int imageOffset = 2, bool allLogits = false) =>
        TextDecoder.Prefill(cache, slot, inputIds, startPos, imageEmbeds, imageOffset, allLogits);

    /// <summary>See <see cref="Kosmos2TextForCausalLM.DecodeStep"/>.</summary>
    public Tensor DecodeStep(Kosmos2KvCache cache, ReadOnlySpan<int> slots, ReadOnlySpan<long> tokenIds, ReadOnlySpan<int> positions) =>
        TextDecoder.DecodeStep(cache, slots, tokenIds, positions);

    /// <summary>See <see cref="Kosmos2TextForCausalLM.Step"/>.</summary>
    public Tensor? Step(Kosmos2KvCache cache, ReadOnlySpan<int> decodeSlots, ReadOnlySpan<long> decodeTokenIds, ReadOnlySpan<int> decodePositions,
        IReadOnlyList<PrefillPart> prefills) =>
        TextDecoder.Step(cache, decodeSlots, decodeTokenIds, decodePositions, prefills);

    /// <summary>
    /// post_layernorm on all 257 tokens, then L2 normalisation (F.normalize, eps 1e-12). The norm is taken in float32:
    /// in bfloat16 the sum of 1024 squares loses precision.
    /// </summary>
    private Tensor NormalizedFeatures(Tensor lastHiddenState)
    {
        using var scope = NewDisposeScope();
        var normed = Module.VisionModel.Model.PostLayerNorm(lastHiddenState).to(ScalarType.Float32);
        var features = nn.functional.normalize(normed, p: 2.0, dim: -1, eps: 1e-12);
        return features.to(DType).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs the vision encoder's and the image-to-text projection's bf16 work on <paramref name="kernels"/> (null:
    /// libtorch): products, attention, the encoder layers' layer norms, residual adds and quick_gelu (the embeddings and
    /// the first and last layer norms stay on libtorch). With kernels, the products' weights are packed in place for
    /// them where the shapes allow, and restored without (as the decoder's). An image's embeddings depend on that image
    /// alone, whatever else is in its batch. The decoder's choice is <see cref="Kosmos2TextForCausalLM.UseKernels"/>.
    /// </summary>
    public void UseVisionKernels(Bf16Kernels? kernels)
    {
        foreach (var module in Module.VisionModel.modules())
        {
            switch (module)
            {
                case Vision.Kosmos2VisionAttention attention:
                    attention.Kernels = kernels;
                    break;
                case Vision.Kosmos2VisionMLP mlp:
                    mlp.Kernels = kernels;
                    break;
                case Vision.Kosmos2VisionEncoderLayer layer:
                    layer.Kernels = kernels;
                    break;
            }
        }
        Module.ImageToTextProjection.Kernels = kernels;
    }

    public void Dispose() => Module.Dispose();
}
