using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.VisionWorker.Encoding;

/// <summary>
/// The model side of the vision worker: pixel values in, embeddings out as bytes. Created, used and
/// disposed on the encoder thread only (it owns every tensor); callers never see a tensor.
/// </summary>
public interface IVisionEncoder : IDisposable
{
    /// <summary>Embedding rows per image (64).</summary>
    int Rows { get; }

    /// <summary>Embedding width (the text hidden size).</summary>
    int Columns { get; }

    /// <summary>Dtype of the returned bytes.</summary>
    TensorDType OutputDType { get; }

    /// <summary>Model, dtype, device.</summary>
    ModelIdentity Identity { get; }

    /// <summary>Encodes a batch: each input is [3, 224, 224] float32 pixel values; each output is [Rows, Columns] in <see cref="OutputDType"/>.</summary>
    byte[][] Encode(IReadOnlyList<float[]> pixelValues);
}
