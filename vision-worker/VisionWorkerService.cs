using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.VisionWorker;

/// <summary>The internal <c>kosmos2.internal.v1.VisionWorker</c> service.</summary>
public sealed class VisionWorkerService(IOptions<VisionWorkerOptions> options, ReadinessGate readiness)
    : Contracts.Internal.V1.VisionWorker.VisionWorkerBase
{
    private readonly VisionWorkerOptions _options = options.Value;

    public override Task<VisionInfo> GetInfo(VisionInfoRequest request, ServerCallContext context)
    {
        var info = new VisionInfo
        {
            Model = new ModelIdentity { ModelId = _options.ModelId, Dtype = _options.DType, Device = "cpu" },
            MaxImageBytes = (ulong)_options.MaxImageBytes,
            MaxImagePixels = (ulong)_options.MaxImagePixels,
            MaxBatch = (uint)_options.MaxBatch,
            Ready = readiness.IsReady,
        };
        return Task.FromResult(info);
    }
}
