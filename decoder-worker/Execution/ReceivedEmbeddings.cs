using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Engine;

namespace Kosmos2.DecoderWorker.Execution;

/// <summary>A request's image embeddings as received: [Rows, Columns] raw bytes; the runner turns them into a tensor at prefill.</summary>
public sealed record ReceivedEmbeddings(TensorDType DType, int Rows, int Columns, byte[] Data) : IImagePayload;
