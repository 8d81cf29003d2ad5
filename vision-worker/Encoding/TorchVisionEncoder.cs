using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.VisionWorker.Encoding;

/// <summary>CLIP ViT + Kosmos-2 projection on TorchSharp. Lives on the encoder thread: created, used and disposed there.</summary>
public sealed class TorchVisionEncoder : IVisionEncoder
{
    private const int PixelsPerImage = 3 * 224 * 224;
    private readonly Kosmos2Model _model;

    private TorchVisionEncoder(Kosmos2Model model, ModelIdentity identity)
    {
        _model = model;
        Identity = identity;
        Rows = model.Config.LatentQueryNum;
        Columns = model.Config.Text.EmbedDim;
        OutputDType = model.DType == ScalarType.BFloat16 ? TensorDType.Bfloat16 : TensorDType.Float32;
    }

    public int Rows { get; }

    public int Columns { get; }

    public TensorDType OutputDType { get; }

    public ModelIdentity Identity { get; }

    /// <summary>
    /// Loads the vision half of the configured model (see <see cref="ModelSource"/>) on this thread, its bf16 encoder and projection on
    /// the kernels <see cref="ModelSourceOptions.Kernels"/> picks over <paramref name="threads"/> threads.
    /// <paramref name="kernelsChosen"/> says which (for the log).
    /// </summary>
    public static TorchVisionEncoder Load(ModelSourceOptions options, int threads, IProgress<string>? progress, out string kernelsChosen)
    {
        var (model, loaded) = ModelSource.Load(options, Kosmos2Parts.Vision, progress);
        var native = KernelChoice.Resolve(options.Kernels, model.Device, threads, out kernelsChosen);
        if (native is not null && model.DType == ScalarType.BFloat16)
        {
            // As in the decoder: libtorch keeps one thread beside the kernels (what it still runs is small, per row).
            model.UseVisionKernels(native);
            TorchThreads.Apply(KernelChoice.TorchThreadsBesideNative);
        }
        else if (model.DType != ScalarType.BFloat16)
        {
            kernelsChosen += " (float32: libtorch runs every product)";
        }
        var identity = new ModelIdentity { ModelId = loaded.ModelId, Fingerprint = loaded.Fingerprint, Dtype = loaded.DType, Device = loaded.Device };
        return new TorchVisionEncoder(model, identity);
    }

    public byte[][] Encode(IReadOnlyList<float[]> pixelValues)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var batch = new float[pixelValues.Count * PixelsPerImage];
        for (var i = 0; i < pixelValues.Count; i++)
        {
            pixelValues[i].AsSpan().CopyTo(batch.AsSpan(i * PixelsPerImage, PixelsPerImage));
        }
        var input = torch.tensor(batch, [pixelValues.Count, 3, 224, 224]);
        var embeds = _model.EncodeImages(input).to(torch.CPU).contiguous(); // [B, 64, D]
        var outputs = new byte[pixelValues.Count][];
        for (var i = 0; i < pixelValues.Count; i++)
        {
            outputs[i] = embeds[i].contiguous().bytes.ToArray();
        }
        return outputs;
    }

    public void Dispose() => _model.Dispose();
}
