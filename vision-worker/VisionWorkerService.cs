using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.ServiceDefaults;
using Kosmos2.VisionWorker.Caching;
using Kosmos2.VisionWorker.Encoding;

namespace Kosmos2.VisionWorker;

/// <summary>The internal <c>kosmos2.internal.v1.VisionWorker</c> service: thin mapping onto <see cref="VisionEncodeHandler"/>.</summary>
public sealed class VisionWorkerService(
    VisionEncodeHandler handler,
    EncoderLoop encoder,
    EmbeddingCache cache,
    VisionWorkerOptions options,
    ReadinessGate readiness) : Contracts.Internal.V1.VisionWorker.VisionWorkerBase
{
    public override Task<EncodeResponse> Encode(EncodeRequest request, ServerCallContext context) =>
        handler.EncodeAsync(request, context.CancellationToken);

    public override Task<VisionInfo> GetInfo(VisionInfoRequest request, ServerCallContext context)
    {
        var info = new VisionInfo
        {
            PreprocessingVersion = Processing.Images.ImagePreprocessor.PreprocessingVersion,
            MaxImageBytes = (ulong)options.MaxImageBytes,
            MaxImagePixels = (ulong)options.MaxImagePixels,
            MaxBatch = (uint)encoder.MaxBatch,
            Ready = readiness.IsReady,
            Forwards = (ulong)encoder.Forwards,
            ImagesEncoded = (ulong)encoder.ImagesEncoded,
            RedisHealthy = cache.RedisHealthy,
        };
        info.Formats.Add(options.Formats.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (encoder.Ready.IsCompletedSuccessfully)
        {
            var model = encoder.Ready.Result;
            info.Model = model.Identity;
            info.EmbeddingShape.Add([(uint)model.Rows, (uint)model.Columns]);
        }
        return Task.FromResult(info);
    }
}
