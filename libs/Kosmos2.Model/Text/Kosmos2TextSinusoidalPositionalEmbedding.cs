using TorchSharp;
using static TorchSharp.torch;

namespace Kosmos2.Model.Text;

/// <summary>
/// Mirrors transformers Kosmos2TextSinusoidalPositionalEmbedding (fairseq/M2M100 style). Not a module: the table is a
/// non-persistent buffer in HF and must not appear among the checkpoint keys. Owns its table (float32, on the model's
/// device) and grows it on demand like HF (no error past max_position_embeddings).
/// </summary>
public sealed class Kosmos2TextSinusoidalPositionalEmbedding : IDisposable
{
    private const int Offset = 2;
    private readonly int _dim;
    private readonly int _paddingIdx;
    private readonly Device _device;
    private Tensor _weights; // [rows, D] float32

    public Kosmos2TextSinusoidalPositionalEmbedding(int maxPositions, int dim, int paddingIdx, Device device)
    {
        _dim = dim;
        _paddingIdx = paddingIdx;
        _device = device;
        _weights = MakeTable(maxPositions + Offset, dim, paddingIdx, device).DetachFromDisposeScope();
    }

    /// <summary>Rows currently in the table.</summary>
    public long Rows => _weights.shape[0];

    /// <summary>
    /// HF's table computed the way HF does in float32: half = D/2, c = ln(10000)/(half−1), row p =
    /// [sin(p·e^{−kc}) for k, then cos(p·e^{−kc}) for k] (sin block then cos block), padding row zero.
    /// </summary>
    public static Tensor MakeTable(long rows, int dim, int paddingIdx, Device? device = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var half = dim / 2;
        var c = Math.Log(10000.0) / (half - 1);
        var freq = torch.exp(torch.arange(half, ScalarType.Int64, device).to(ScalarType.Float32) * (float)-c); // [half]
        var angles = torch.arange(rows, ScalarType.Int64, device).to(ScalarType.Float32).unsqueeze(1) * freq.unsqueeze(0);
        var table = torch.cat([torch.sin(angles), torch.cos(angles)], dim: 1).view(rows, -1);
        if (dim % 2 == 1)
        {
            table = torch.cat([table, torch.zeros(rows, 1, device: device)], dim: 1);
        }
        table[paddingIdx] = torch.zeros(dim, device: device);
        return table.MoveToOuterDisposeScope();
    }

    /// <summary>positionIds [B, T] (int64) → [B, T, D] float32; grows the table past <paramref name="maxPositionId"/>.</summary>
    public Tensor Lookup(Tensor positionIds, long maxPositionId)
    {
        if (maxPositionId >= Rows)
        {
            var grown = MakeTable(maxPositionId + 1 + Offset, _dim, _paddingIdx, _device).DetachFromDisposeScope();
            _weights.Dispose();
            _weights = grown;
        }
        var b = positionIds.shape[0];
        var t = positionIds.shape[1];
        return _weights.index_select(0, positionIds.reshape(-1)).view(b, t, -1);
    }

    public void Dispose() => _weights.Dispose();
}
