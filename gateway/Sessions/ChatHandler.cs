using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Generation;
using Kosmos2.Gateway.Routing;
using Kosmos2.Gateway.Validation;
using Kosmos2.Processing.Prompts;
using Kosmos2.Processing.Tokenization;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Sessions;

/// <summary>
/// Multi-turn referring chat over one image (<see cref="QuestionPrompt"/> gives the format): sessions are created,
/// read and deleted per tenant; a turn appends its question to the stored context ids, generates, and stores the answer.
/// </summary>
public sealed class ChatHandler(IOptions<GatewayOptions> options, GenerationRunner runner, GatewayTokenizer tokenizer,
    ISessionStore sessions, DecoderPool decoders, GenerateResults results, GatewayMetrics metrics)
{
    private readonly GatewayOptions _options = options.Value;

    public async Task<Session> CreateAsync(CreateSessionRequest request, ServerCallContext context)
    {
        var tenant = context.GetTenant();
        RequestValidator.ValidateImage(request.Image, _options);
        var sessionOptions = request.Options ?? new Contracts.V1.SessionOptions();
        RequestValidator.ValidateSampling(sessionOptions.Sampling, _options, tokenizer.Tokenizer.VocabSize, "options.sampling");
        RequestValidator.ValidateStopping(sessionOptions.Stopping, _options, "options.stopping");
        var image = await runner.EncodeImageAsync(request.Image, tenant.EmbeddingCacheSalt, context).ConfigureAwait(false);
        var imageBlock = PromptBuilder.Build("", null, tokenizer.Encode).InputIds;
        var record = await sessions.CreateAsync(
            new NewSession(tenant.Id, new SessionImage(image.Sha256, image.Width, image.Height, image.CacheSalt), sessionOptions, imageBlock)
            {
                Embeddings = image.Embeddings,
            },
            context.CancellationToken).ConfigureAwait(false);
        return record.ToProto();
    }

    public async Task SendTurnAsync(SendTurnRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var arrival = Stopwatch.StartNew();
        var tenant = context.GetTenant();
        RequestValidator.ValidateText(request.Text, "text", _options, required: true);
        var session = await FindAsync(tenant, request.SessionId, context).ConfigureAwait(false);
        SessionLimits.EnsureTurnAllowed(session.Turns.Count, _options);
        RequestValidator.ValidateRegions(request.Regions, _options, session.Image.Width, session.Image.Height);
        var sampling = request.Sampling ?? session.Options.Sampling;
        RequestValidator.ValidateSampling(sampling, _options, tokenizer.Tokenizer.VocabSize);
        var stopping = request.Stopping ?? session.Options.Stopping;
        var requestedMax = RequestValidator.ValidateStopping(stopping, _options);

        var (question, boxes) = TaskPrompts.WithRegions(request.Text.Trim(), request.Regions, session.Image.Width, session.Image.Height);
        var questionIds = tokenizer.Encode(QuestionPrompt.ChatTurn(PromptBuilder.InsertBoxes(question, boxes), session.Turns.Count == 0, session.Options.Grounding));
        var decoderContext = await decoders.MaxSequenceTokensAsync(context.CancellationToken).ConfigureAwait(false);
        var maxNewTokens = SessionLimits.RoomForNewTokens(session, questionIds.Length, requestedMax, _options, decoderContext);
        using var decoderPlace = await decoders.ReserveAsync(1, context.CancellationToken).ConfigureAwait(false);
        var image = await SessionImageAsync(session, tenant, context).ConfigureAwait(false);

        var input = new GenerationInput(session.ContextTokenIds.Concat(questionIds).ToList(), [tokenizer.Tokenizer.ImageEndTokenId, .. questionIds],
            maxNewTokens, GenerateHandler.DecodeSamplingOf(sampling), [], stopping?.StopSequences.ToList() ?? [], session.LastDecoderAddress);
        var outcome = await runner.RunAsync(input, image, responseStream, arrival, context).ConfigureAwait(false);

        var answerIds = QuestionPrompt.AnswerIds(outcome.GeneratedIds, Kosmos2Tokenizer.EosId);
        var turn = new SessionTurn
        {
            Text = request.Text,
            Regions = request.Regions.ToList(),
            Answer = QuestionPrompt.AnswerText(outcome.Result.CleanText, outcome.PromptText),
            Entities = outcome.Result.Entities.Select(e => EntityMapping.ToProto(e, image.Width, image.Height)).ToList(),
            PromptTokens = questionIds.Length,
            GeneratedTokens = answerIds.Count,
        };
        // Stored even if the client has gone: an answered turn is never lost.
        var updated = await sessions.AppendTurnAsync(tenant.Id, session.Id, session.Version,
            new NewTurn(turn, questionIds, answerIds, outcome.DecoderAddress), CancellationToken.None).ConfigureAwait(false);
        var result = results.Build([new GenerationPart(input, outcome)], image, arrival, updated.Id, updated.Turns.Count - 1);
        await responseStream.WriteAsync(new GenerateResponse { Result = result }, context.CancellationToken).ConfigureAwait(false);
        metrics.RecordGeneration(outcome.TimeToFirstTokenMs / 1000, input.InputIds.Count, outcome.GeneratedIds.Count);
    }

    public async Task<Session> GetAsync(GetSessionRequest request, ServerCallContext context) =>
        (await FindAsync(context.GetTenant(), request.SessionId, context).ConfigureAwait(false)).ToProto();

    public async Task<DeleteSessionResponse> DeleteAsync(DeleteSessionRequest request, ServerCallContext context)
    {
        var deleted = SessionIds.IsWellFormed(request.SessionId)
                      && await sessions.DeleteAsync(context.GetTenant().Id, request.SessionId, context.CancellationToken).ConfigureAwait(false);
        if (!deleted)
        {
            SessionErrors.NotFound(request.SessionId);
        }
        return new DeleteSessionResponse { Deleted = true };
    }

    /// <summary>The tenant's session, or NOT_FOUND (also for another tenant's id: a session's existence is not revealed).</summary>
    private async Task<SessionRecord> FindAsync(Tenant tenant, string sessionId, ServerCallContext context)
    {
        var session = SessionIds.IsWellFormed(sessionId)
            ? await sessions.GetAsync(tenant.Id, sessionId, context.CancellationToken).ConfigureAwait(false)
            : null;
        if (session is null)
        {
            SessionErrors.NotFound(sessionId);
        }
        return session;
    }

    /// <summary>
    /// The session's image embeddings: those stored with it, so cache eviction never fails a turn; for a session stored
    /// without them (created before they were kept), the embedding cache by hash. Either way in the namespace the session
    /// was created under, whichever gateway replica (with whatever secret) serves the turn.
    /// </summary>
    private async Task<EncodedImage> SessionImageAsync(SessionRecord session, Tenant tenant, ServerCallContext context)
    {
        if (await sessions.GetEmbeddingsAsync(tenant.Id, session.Id, context.CancellationToken).ConfigureAwait(false) is { } embeddings)
        {
            return new EncodedImage(embeddings, session.Image.Sha256, session.Image.Width, session.Image.Height, CacheHit: true, VisionMs: 0, session.Image.CacheSalt);
        }
        try
        {
            return await runner.EncodeImageAsync(new Contracts.V1.Image { Sha256 = session.Image.Sha256 }, session.Image.CacheSalt, context).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            RpcErrors.FailedPrecondition("The session's image is no longer in the embedding cache: create a new session with the image.");
            throw;
        }
    }
}
