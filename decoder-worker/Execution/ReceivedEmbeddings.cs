using System.Security.Cryptography;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Engine;

namespace Kosmos2.DecoderWorker.Execution;

/// <summary>A request's image embeddings as received: [Rows, Columns] raw bytes; the runner turns them into a tensor at prefill.</summary>
/// <param name="PrefixCacheNamespace">Whose requests may share cached KV rows with this one (the gateway's tenant namespace).</param>
public sealed record ReceivedEmbeddings(TensorDType DType, int Rows, int Columns, byte[] Data, string PrefixCacheNamespace = "") : IImagePayload
{
    /// <summary>
    /// SHA-256 of the namespace, dtype, shape and bytes, hex: the prefix cache shares KV rows only between requests of one
    /// namespace whose embeddings are these exact bytes (the same image through the same vision model), whatever the
    /// gateway calls the image. Hashing 256 KiB (full size, bf16) takes well under a millisecond, on the receiving call's
    /// thread, not the engine's.
    /// </summary>
    public string Identity { get; } = ComputeIdentity(PrefixCacheNamespace, DType, Rows, Columns, Data);

    private static string ComputeIdentity(string prefixCacheNamespace, TensorDType dtype, int rows, int columns, byte[] data)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(prefixCacheNamespace));
        hash.AppendData([0]); // ends the namespace, so no namespace + bytes can read as another
        hash.AppendData(BitConverter.GetBytes((int)dtype));
        hash.AppendData(BitConverter.GetBytes(rows));
        hash.AppendData(BitConverter.GetBytes(columns));
        hash.AppendData(data);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
