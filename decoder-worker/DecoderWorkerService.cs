using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.DecoderWorker;

/// <summary>The internal <c>kosmos2.internal.v1.DecoderWorker</c> service.</summary>
public sealed class DecoderWorkerService(IOptions<DecoderWorkerOptions> options, ReadinessGate readiness)
    : Contracts.Internal.V1.DecoderWorker.DecoderWorkerBase
{
    private readonly DecoderWorkerOptions _options = options.Value;

    public override Task<DecoderInfo> GetInfo(DecoderInfoRequest request, ServerCallContext context)
    {
        var info = new DecoderInfo
        {
            Model = new ModelIdentity { ModelId = _options.ModelId, Dtype = _options.DType, Device = "cpu" },
            MaxRunning = (uint)_options.MaxRunning,
            MaxWaiting = (uint)_options.MaxWaiting,
            MaxSequenceTokens = (uint)_options.MaxSequenceTokens,
            KvSlotsTotal = (uint)_options.MaxRunning,
            Ready = readiness.IsReady,
        };
        return Task.FromResult(info);
    }
}
