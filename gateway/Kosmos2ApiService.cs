using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Generation;
using Kosmos2.Gateway.Routing;
using Kosmos2.Gateway.Sessions;
using Kosmos2.Gateway.Validation;
using Kosmos2.Processing.Prompts;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway;

/// <summary>
/// The public <c>kosmos2.v1.Kosmos2</c> service: validates, encodes the image, builds the prompt, streams the
/// generation. Chat turns follow this format (documented in the README): the session's context starts as
/// <c>&lt;s&gt;&lt;image&gt;…&lt;/image&gt;</c>; turn 1 appends the ids of <c>[&lt;grounding&gt;]Question: {q} Answer:</c>,
/// later turns <c> Question: {q} Answer:</c>; each answer's ids are appended as generated, without its final
/// <c>&lt;/s&gt;</c>. Nothing is re-tokenised: a turn's prompt is the stored ids + the new question's ids.
/// </summary>
public sealed class Kosmos2ApiService(
    IOptions<GatewayOptions> options,
    GenerationRunner runner,
    GatewayTokenizer tokenizer,
    ISessionStore sessions,
    VisionPool vision,
    DecoderPool decoders,
    GatewayMetrics metrics) : Contracts.V1.Kosmos2.Kosmos2Base
{
    private readonly GatewayOptions _options = options.Value;

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var arrival = Stopwatch.StartNew();
        var tenant = context.GetTenant();
        RequestValidator.ValidateImage(request.Image, _options);
        RequestValidator.ValidateText(request.Prompt, "prompt", _options);
        RequestValidator.ValidateText(request.Text, "text", _options);
        RequestValidator.ValidateRegions(request.Regions, _options);
        RequestValidator.ValidateSampling(request.Sampling, _options, tokenizer.Tokenizer.VocabSize);
        var maxNewTokens = RequestValidator.ValidateStopping(request.Stopping, _options);
        if (request.Phrases.Count > _options.MaxRegions)
        {
            RpcErrors.OverLimit("phrases", request.Phrases.Count.ToString(), _options.MaxRegions.ToString(), "Gateway:MaxRegions");
        }

        var image = await runner.EncodeImageAsync(request.Image, tenant, context).ConfigureAwait(false);
        RequestValidator.ValidateRegions(request.Regions, _options, image.Width, image.Height);
        var plans = TaskPrompts.Plan(request, image.Width, image.Height);
        var sampling = ToDecodeSampling(request.Sampling);
        var stopStrings = request.Stopping?.StopSequences.ToList() ?? [];

        if (plans.Count == 1)
        {
            var input = Input(plans[0], maxNewTokens, sampling, stopStrings);
            var outcome = await runner.RunAsync(input, image, responseStream, arrival, context).ConfigureAwait(false);
            await WriteResultAsync(responseStream, outcome, image, input.InputIds, arrival, context, "", 0).ConfigureAwait(false);
            metrics.RecordRequest("Generate", "OK", arrival.Elapsed.TotalSeconds, outcome.TimeToFirstTokenMs / 1000, input.InputIds.Count, outcome.GeneratedIds.Count);
            return;
        }

        // Several phrases to ground: one generation each, batched together by the decoder, merged in phrase order.
        var inputs = plans.Select(p => Input(p, maxNewTokens, sampling, stopStrings)).ToList();
        var outcomes = await Task.WhenAll(inputs.Select(i => runner.RunAsync(i, image, null, arrival, context))).ConfigureAwait(false);
        var merged = MergePhrases(outcomes, image, out var text);
        var delta = new TextDelta { Text = text };
        if (sampling.ReturnLogprobs)
        {
            // Nothing was streamed per token: the one delta carries every generated id with its log-probability.
            delta.TokenIds.Add(outcomes.SelectMany(o => o.GeneratedIds).Select(i => (uint)i));
            delta.Logprobs.Add(outcomes.SelectMany(o => o.Logprobs?.Tokens ?? []));
        }
        await responseStream.WriteAsync(new GenerateResponse { Delta = delta }, context.CancellationToken).ConfigureAwait(false);
        foreach (var entity in merged)
        {
            await responseStream.WriteAsync(new GenerateResponse { Entity = entity }, context.CancellationToken).ConfigureAwait(false);
        }
        var result = new GenerateResult
        {
            Text = text,
            FinishReason = outcomes.Any(o => o.FinishReason == FinishReason.Length) ? FinishReason.Length : outcomes[0].FinishReason,
            Usage = new Usage { PromptTokens = (uint)inputs.Sum(i => i.InputIds.Count), GeneratedTokens = (uint)outcomes.Sum(o => o.GeneratedIds.Count) },
            Timings = Timings(image, outcomes.Max(o => o.QueueMs), outcomes.Min(o => o.TimeToFirstTokenMs), arrival),
            RawText = string.Join("\n", outcomes.Select(o => tokenizer.Decode(o.GeneratedIds))),
            ImageSha256 = image.Sha256,
        };
        result.Entities.Add(merged);
        result.TokenIds.Add(outcomes.SelectMany(o => o.GeneratedIds).Select(i => (uint)i));
        result.TokenLogprobs.Add(outcomes.SelectMany(o => o.Logprobs?.Tokens ?? []));
        await responseStream.WriteAsync(new GenerateResponse { Result = result }, context.CancellationToken).ConfigureAwait(false);
        metrics.RecordRequest("Generate", "OK", arrival.Elapsed.TotalSeconds, result.Timings.TimeToFirstTokenMs / 1000, (int)result.Usage.PromptTokens, (int)result.Usage.GeneratedTokens);
    }

    public override async Task<Session> CreateSession(CreateSessionRequest request, ServerCallContext context)
    {
        var tenant = context.GetTenant();
        RequestValidator.ValidateImage(request.Image, _options);
        var sessionOptions = request.Options ?? new Contracts.V1.SessionOptions();
        RequestValidator.ValidateSampling(sessionOptions.Sampling, _options, tokenizer.Tokenizer.VocabSize, "options.sampling");
        RequestValidator.ValidateStopping(sessionOptions.Stopping, _options, "options.stopping");
        var image = await runner.EncodeImageAsync(request.Image, tenant, context).ConfigureAwait(false);
        var imageBlock = PromptBuilder.Build("", null, tokenizer.Encode).InputIds;
        var record = await sessions.CreateAsync(
            new NewSession(tenant.Id, new SessionImage(image.Sha256, image.Width, image.Height, tenant.EmbeddingCacheSalt), sessionOptions, imageBlock)
            {
                Embeddings = image.Embeddings,
            },
            context.CancellationToken).ConfigureAwait(false);
        return record.ToProto();
    }

    public override async Task SendTurn(SendTurnRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var arrival = Stopwatch.StartNew();
        var tenant = context.GetTenant();
        if (!SessionIds.IsWellFormed(request.SessionId))
        {
            SessionErrors.NotFound(request.SessionId);
        }
        RequestValidator.ValidateText(request.Text, "text", _options, required: true);
        var session = await sessions.GetAsync(tenant.Id, request.SessionId, context.CancellationToken).ConfigureAwait(false);
        if (session is null)
        {
            SessionErrors.NotFound(request.SessionId);
        }
        SessionLimits.EnsureTurnAllowed(session.Turns.Count, _options);
        RequestValidator.ValidateRegions(request.Regions, _options, session.Image.Width, session.Image.Height);
        var sampling = request.Sampling ?? session.Options.Sampling;
        RequestValidator.ValidateSampling(sampling, _options, tokenizer.Tokenizer.VocabSize);
        var requestedMax = RequestValidator.ValidateStopping(request.Stopping ?? session.Options.Stopping, _options);

        var (question, boxes) = TaskPrompts.WithRegions(request.Text.Trim(), request.Regions, session.Image.Width, session.Image.Height);
        var segment = (session.Turns.Count == 0 ? (session.Options.Grounding ? "<grounding>" : "") : " ")
                      + "Question: " + PromptBuilder.InsertBoxes(question, boxes) + " Answer:";
        var questionIds = tokenizer.Encode(segment);
        var decoderContext = await decoders.MaxSequenceTokensAsync(context.CancellationToken).ConfigureAwait(false);
        var maxNewTokens = SessionLimits.RoomForNewTokens(session, questionIds.Length, requestedMax, _options, decoderContext);

        var image = await SessionImageAsync(session, tenant, context).ConfigureAwait(false);

        var inputIds = session.ContextTokenIds.Concat(questionIds).ToList();
        var input = new GenerationInput(inputIds, [tokenizer.Tokenizer.ImageEndTokenId, .. questionIds], maxNewTokens,
            ToDecodeSampling(sampling), [], (request.Stopping ?? session.Options.Stopping)?.StopSequences.ToList() ?? [], session.LastDecoderAddress);
        var outcome = await runner.RunAsync(input, image, responseStream, arrival, context).ConfigureAwait(false);

        var answerIds = outcome.GeneratedIds.Count > 0 && outcome.GeneratedIds[^1] == Processing.Tokenization.Kosmos2Tokenizer.EosId
            ? outcome.GeneratedIds.Take(outcome.GeneratedIds.Count - 1).ToList()
            : outcome.GeneratedIds.ToList();
        var answer = outcome.Result.CleanText.StartsWith(outcome.PromptText, StringComparison.Ordinal)
            ? outcome.Result.CleanText[outcome.PromptText.Length..].Trim()
            : outcome.Result.CleanText;
        var turn = new SessionTurn
        {
            Text = request.Text,
            Regions = request.Regions.ToList(),
            Answer = answer,
            Entities = outcome.Result.Entities.Select(e => EntityMapping.ToProto(e, image.Width, image.Height)).ToList(),
            PromptTokens = questionIds.Length,
            GeneratedTokens = answerIds.Count,
        };
        var updated = await sessions.AppendTurnAsync(tenant.Id, session.Id, session.Version,
            new NewTurn(turn, questionIds, answerIds, outcome.DecoderAddress), CancellationToken.None).ConfigureAwait(false);
        await WriteResultAsync(responseStream, outcome, image, inputIds, arrival, context, updated.Id, updated.Turns.Count - 1).ConfigureAwait(false);
        metrics.RecordRequest("SendTurn", "OK", arrival.Elapsed.TotalSeconds, outcome.TimeToFirstTokenMs / 1000, inputIds.Count, outcome.GeneratedIds.Count);
    }

    /// <summary>
    /// The session's image embeddings: those stored with it, so cache eviction never fails a turn; for a session stored
    /// without them (created before they were kept), the embedding cache by hash.
    /// </summary>
    private async Task<EncodedImage> SessionImageAsync(SessionRecord session, Auth.Tenant tenant, ServerCallContext context)
    {
        if (await sessions.GetEmbeddingsAsync(tenant.Id, session.Id, context.CancellationToken).ConfigureAwait(false) is { } embeddings)
        {
            return new EncodedImage(embeddings, session.Image.Sha256, session.Image.Width, session.Image.Height, CacheHit: true, VisionMs: 0);
        }
        try
        {
            return await runner.EncodeImageAsync(new Contracts.V1.Image { Sha256 = session.Image.Sha256 }, tenant, context).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            RpcErrors.FailedPrecondition($"The session's image is no longer in the embedding cache: create a new session with the image.");
            throw;
        }
    }

    public override async Task<Session> GetSession(GetSessionRequest request, ServerCallContext context)
    {
        var tenant = context.GetTenant();
        var session = SessionIds.IsWellFormed(request.SessionId)
            ? await sessions.GetAsync(tenant.Id, request.SessionId, context.CancellationToken).ConfigureAwait(false)
            : null;
        if (session is null)
        {
            SessionErrors.NotFound(request.SessionId);
        }
        return session.ToProto();
    }

    public override async Task<DeleteSessionResponse> DeleteSession(DeleteSessionRequest request, ServerCallContext context)
    {
        var tenant = context.GetTenant();
        var deleted = SessionIds.IsWellFormed(request.SessionId)
                      && await sessions.DeleteAsync(tenant.Id, request.SessionId, context.CancellationToken).ConfigureAwait(false);
        if (!deleted)
        {
            SessionErrors.NotFound(request.SessionId);
        }
        return new DeleteSessionResponse { Deleted = true };
    }

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
            VisionWorkers = (uint)vision.State.Known,
            DecoderWorkers = (uint)decoders.State.Known,
        };
        info.Tasks.Add(Enum.GetValues<TaskKind>().Where(t => t != TaskKind.Unspecified));
        return Task.FromResult(info);
    }

    private GenerationInput Input(PlannedPrompt plan, int maxNewTokens, DecodeSampling sampling, IReadOnlyList<string> stopStrings)
    {
        KosmosPrompt prompt;
        try
        {
            prompt = PromptBuilder.Build(plan.Text, plan.Boxes, tokenizer.Encode);
        }
        catch (InvalidPromptException ex)
        {
            RpcErrors.InvalidArgument($"prompt: {ex.Message}");
            throw;
        }
        if (prompt.InputIds.Length > _options.MaxSessionTokens)
        {
            RpcErrors.OverLimit("prompt", $"{prompt.InputIds.Length} tokens", $"{_options.MaxSessionTokens} tokens", "Gateway:MaxSessionTokens");
        }
        var stops = plan.StopAtObjectEnd ? new[] { new[] { tokenizer.Tokenizer.ObjectEndId } } : [];
        return new GenerationInput(prompt.InputIds, prompt.InputIds, maxNewTokens, sampling, stops, stopStrings, null);
    }

    private static List<Entity> MergePhrases(GenerationOutcome[] outcomes, EncodedImage image, out string text)
    {
        var merged = new List<Entity>();
        var builder = new System.Text.StringBuilder();
        foreach (var outcome in outcomes)
        {
            if (builder.Length > 0)
            {
                builder.Append("; ");
            }
            var offset = (uint)builder.ToString().EnumerateRunes().Count();
            builder.Append(outcome.Result.CleanText);
            for (var i = 0; i < outcome.Result.Entities.Count; i++)
            {
                var proto = EntityMapping.ToProto(outcome.Result.Entities[i], image.Width, image.Height, outcome.Logprobs?.EntityBoxes[i]);
                proto.SpanStart += offset;
                proto.SpanEnd += offset;
                merged.Add(proto);
            }
        }
        text = builder.ToString();
        return merged;
    }

    private async Task WriteResultAsync(IServerStreamWriter<GenerateResponse> stream, GenerationOutcome outcome, EncodedImage image,
        IReadOnlyList<int> promptIds, Stopwatch arrival, ServerCallContext context, string sessionId, int turnIndex)
    {
        var result = new GenerateResult
        {
            Text = outcome.Result.CleanText,
            FinishReason = outcome.FinishReason,
            Usage = new Usage { PromptTokens = (uint)promptIds.Count, GeneratedTokens = (uint)outcome.GeneratedIds.Count },
            Timings = Timings(image, outcome.QueueMs, outcome.TimeToFirstTokenMs, arrival),
            RawText = tokenizer.Decode([.. promptIds, .. outcome.GeneratedIds]),
            ImageSha256 = image.Sha256,
            SessionId = sessionId,
            TurnIndex = (uint)turnIndex,
        };
        result.Entities.Add(outcome.Result.Entities.Select((e, i) => EntityMapping.ToProto(e, image.Width, image.Height, outcome.Logprobs?.EntityBoxes[i])));
        result.TokenIds.Add(outcome.GeneratedIds.Select(i => (uint)i));
        result.TokenLogprobs.Add(outcome.Logprobs?.Tokens ?? []);
        result.PromptTokenIds.Add(promptIds.Select(i => (uint)i));
        await stream.WriteAsync(new GenerateResponse { Result = result }, context.CancellationToken).ConfigureAwait(false);
    }

    private static Timings Timings(EncodedImage image, double queueMs, double ttftMs, Stopwatch arrival) => new()
    {
        QueueMs = queueMs,
        VisionMs = image.VisionMs,
        ImageCacheHit = image.CacheHit,
        TimeToFirstTokenMs = ttftMs,
        TotalMs = arrival.Elapsed.TotalMilliseconds,
    };

    private static DecodeSampling ToDecodeSampling(SamplingParameters? sampling) => new()
    {
        Temperature = sampling?.Temperature ?? 0,
        TopK = sampling?.TopK ?? 0,
        TopP = sampling?.TopP ?? 0,
        RepetitionPenalty = sampling?.RepetitionPenalty ?? 0,
        Seed = sampling?.Seed ?? 0,
        ConstrainGrounding = sampling?.ConstrainGrounding ?? false,
        ReturnLogprobs = sampling?.ReturnLogprobs ?? false,
        TopLogprobs = sampling?.TopLogprobs ?? 0,
    };
}
