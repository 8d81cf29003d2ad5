using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway;

/// <summary>The public <c>kosmos2.v1.Kosmos2</c> service.</summary>
public sealed class Kosmos2ApiService(IOptions<GatewayOptions> options) : Kosmos2.Contracts.V1.Kosmos2.Kosmos2Base
{
    private readonly GatewayOptions _options = options.Value;

    public override Task<ServerInfo> GetInfo(GetInfoRequest request, ServerCallContext context)
    {
        var info = new ServerInfo
        {
            ModelId = _options.ModelId,
            ServerVersion = ServiceDefaultsExtensions.ServiceVersion,
            Limits = new Limits
            {
                MaxImageBytes = (ulong)_options.MaxImageBytes,
                MaxImagePixels = (ulong)_options.MaxImagePixels,
                MaxPromptChars = (uint)_options.MaxPromptChars,
                MaxNewTokens = (uint)_options.MaxNewTokens,
                DefaultMaxNewTokens = (uint)_options.DefaultMaxNewTokens,
                MaxRegions = (uint)_options.MaxRegions,
                MaxSessionTurns = (uint)_options.MaxSessionTurns,
                MaxSessionTokens = (uint)_options.MaxSessionTokens,
            },
        };
        info.Tasks.Add(Enum.GetValues<TaskKind>().Where(t => t != TaskKind.Unspecified));
        return Task.FromResult(info);
    }
}
