using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Generation;
using Kosmos2.Gateway.Routing;
using Kosmos2.Gateway.Sessions;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway;

/// <summary>
/// The public <c>kosmos2.v1.Kosmos2</c> service: each call goes to the handler of its concern
/// (<see cref="GenerateHandler"/>, <see cref="ChatHandler"/>); <c>GetInfo</c> maps the gateway's settings.
/// </summary>
public sealed class Kosmos2ApiService(
    IOptions<GatewayOptions> options,
    GenerateHandler generate,
    ChatHandler chat,
    VisionPool vision,
    DecoderPool decoders) : Contracts.V1.Kosmos2.Kosmos2Base
{
    public override Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context) =>
        generate.HandleAsync(request, responseStream, context);

    public override Task<Session> CreateSession(CreateSessionRequest request, ServerCallContext context) => chat.CreateAsync(request, context);

    public override Task SendTurn(SendTurnRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context) =>
        chat.SendTurnAsync(request, responseStream, context);

    public override Task<Session> GetSession(GetSessionRequest request, ServerCallContext context) => chat.GetAsync(request, context);

    public override Task<DeleteSessionResponse> DeleteSession(DeleteSessionRequest request, ServerCallContext context) => chat.DeleteAsync(request, context);

    public override Task<ServerInfo> GetInfo(GetInfoRequest request, ServerCallContext context)
    {
        var o = options.Value;
        var info = new ServerInfo
        {
            ModelId = o.ModelId,
            ServerVersion = ServiceDefaultsExtensions.ServiceVersion,
            Limits = new Limits
            {
                MaxImageBytes = (ulong)o.MaxImageBytes,
                MaxImagePixels = (ulong)o.MaxImagePixels,
                MaxPromptChars = (uint)o.MaxPromptChars,
                MaxNewTokens = (uint)o.MaxNewTokens,
                DefaultMaxNewTokens = (uint)o.DefaultMaxNewTokens,
                MaxRegions = (uint)o.MaxRegions,
                MaxSessionTurns = (uint)o.MaxSessionTurns,
                MaxSessionTokens = (uint)o.MaxSessionTokens,
            },
            VisionWorkers = (uint)vision.State.Known,
            DecoderWorkers = (uint)decoders.State.Known,
        };
        info.Tasks.Add(Enum.GetValues<TaskKind>().Where(t => t != TaskKind.Unspecified));
        return Task.FromResult(info);
    }
}
