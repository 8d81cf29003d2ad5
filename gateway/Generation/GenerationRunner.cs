using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Quotas;
using Kosmos2.Gateway.Routing;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Prompts;
using Kosmos2.ServiceDefaults;

namespace Kosmos2.Gateway.Generation;

/// <summary>An image as the vision worker returned it: embeddings, content hash, original size, cache hit and time.</summary>
/// <param name="CacheSalt">The tenant namespace it was encoded under; the decoder's prefix cache is scoped by it too.</param>
public sealed record EncodedImage(TensorBytes Embeddings, string Sha256, int Width, int Height, bool CacheHit, double VisionMs, string CacheSalt);

/// <summary>What one generation needs besides the image.</summary>
/// <param name="InputIds">The decoder's input: the whole context, image placeholders included.</param>
/// <param name="ParserPromptIds">The ids the grounding parser treats as prompt (a tail starting at <c>&lt;/image&gt;</c>).</param>
public sealed record GenerationInput(
    IReadOnlyList<int> InputIds,
    IReadOnlyList<int> ParserPromptIds,
    int MaxNewTokens,
    DecodeSampling Sampling,
    IReadOnlyList<int[]> StopTokenSequences,
    IReadOnlyList<string> StopStrings,
    string? PreferredDecoder);

/// <summary>The outcome of one generation, for the final message and for sessions.</summary>
public sealed record GenerationOutcome(
    GroundingResult Result,
    string PromptText,
    IReadOnlyList<int> GeneratedIds,
    FinishReason FinishReason,
    double QueueMs,
    double TimeToFirstTokenMs,
    string? DecoderAddress,
    OutcomeLogprobs? Logprobs = null)
{
    /// <summary>Prompt tokens the decoder reused from its prefix cache instead of prefilling (its <c>DecodeUsage</c>).</summary>
    public int CachedPromptTokens { get; init; }
}

/// <summary>
/// Runs generations for the public API: gets image embeddings from the vision pool, streams token ids from a
/// decoder, and turns them into text deltas and entities with the streaming grounding parser.
/// </summary>
public sealed class GenerationRunner(VisionPool vision, DecoderPool decoders, GatewayTokenizer tokenizer, GatewayMetrics metrics, TenantQuotas quotas)
{
    /// <summary>Encodes (or finds by hash) the request's image in the cache namespace <paramref name="cacheSalt"/> (a tenant's).</summary>
    public async Task<EncodedImage> EncodeImageAsync(Contracts.V1.Image image, string cacheSalt, ServerCallContext context)
    {
        var watch = Stopwatch.StartNew();
        var request = new EncodeRequest { Image = image.Data, Sha256 = image.Sha256 ?? "", CacheSalt = cacheSalt };
        EncodeResponse reply;
        try
        {
            reply = await vision.EncodeAsync(request, WorkerCallOptions.From(context, vision.EncodeTimeout)).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.DeadlineExceeded && context.Deadline > DateTime.UtcNow)
        {
            // The gateway's own bound passed, not the caller's deadline: the vision workers are behind, which is overload.
            RpcErrors.ResourceExhausted(
                $"The vision workers did not encode the image within {vision.EncodeTimeout.TotalSeconds:0.#} s (Gateway:VisionEncodeTimeoutMs): " +
                "they are busy. Retry after the hint, or send fewer images at once.", TimeSpan.FromSeconds(5));
            throw;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            RpcErrors.NotFound($"image.sha256 {image.Sha256} is not cached (or expired): send the image bytes in image.data.");
            throw;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
        {
            RpcErrors.InvalidArgument($"image: {ex.Status.Detail}");
            throw;
        }
        metrics.RecordImage(reply.CacheHit, watch.Elapsed.TotalSeconds);
        return new EncodedImage(reply.Embeddings, reply.Sha256, (int)reply.ImageWidth, (int)reply.ImageHeight, reply.CacheHit, watch.Elapsed.TotalMilliseconds, cacheSalt);
    }

    /// <summary>
    /// Runs one generation. With <paramref name="stream"/> set, the text (prompt part first, then deltas as tokens
    /// arrive) and each entity the moment it completes are written to it; the final message is the caller's.
    /// </summary>
    public async Task<GenerationOutcome> RunAsync(GenerationInput input, EncodedImage image, IServerStreamWriter<GenerateResponse>? stream,
        Stopwatch sinceArrival, ServerCallContext context)
    {
        var request = new DecodeRequest
        {
            RequestId = context.GetHttpContext().TraceIdentifier,
            ImageEmbeddings = image.Embeddings,
            ImageOffset = PromptBuilder.ImageOffset, // every prompt, a chat context too, starts <s><image>
            Sampling = input.Sampling,
            Stopping = new DecodeStopping { MaxNewTokens = (uint)input.MaxNewTokens },
            PrefixCacheNamespace = image.CacheSalt, // the tenant's, as its images are
        };
        request.InputIds.Add(input.InputIds.Select(i => (uint)i));
        foreach (var stop in input.StopTokenSequences)
        {
            var sequence = new TokenSequence();
            sequence.TokenIds.Add(stop.Select(t => (uint)t));
            request.Stopping.StopSequences.Add(sequence);
        }

        var parser = new StreamingGroundingParser(tokenizer.Decode, input.ParserPromptIds);
        var logprobs = input.Sampling.ReturnLogprobs ? new LogprobTracker(tokenizer.Tokenizer) : null;
        // Nothing is written before a decoder has taken the request: a refusal (RESOURCE_EXHAUSTED with its retry hint,
        // UNAVAILABLE) must reach the client before any message, so it can retry the whole call.
        using var generation = await decoders.GenerateAsync(request, input.PreferredDecoder, WorkerCallOptions.From(context)).ConfigureAwait(false);
        var generated = new List<int>();
        try
        {
            return await StreamAsync(input, image, stream, sinceArrival, context, generation, parser, logprobs, generated).ConfigureAwait(false);
        }
        finally
        {
            // Whatever the outcome, the decoder ran the prompt and the tokens that came back: they count against the tenant.
            quotas.Charge(context.GetTenant(), input.InputIds.Count, generated.Count);
        }
    }

    private async Task<GenerationOutcome> StreamAsync(GenerationInput input, EncodedImage image, IServerStreamWriter<GenerateResponse>? stream,
        Stopwatch sinceArrival, ServerCallContext context, DecoderGeneration generation, StreamingGroundingParser parser, LogprobTracker? logprobs,
        List<int> generated)
    {
        if (stream is not null && parser.PromptText.Length > 0)
        {
            await stream.WriteAsync(new GenerateResponse { Delta = new TextDelta { Text = parser.PromptText } }, context.CancellationToken).ConfigureAwait(false);
            foreach (var entity in parser.PromptEntities)
            {
                await stream.WriteAsync(new GenerateResponse { Entity = EntityMapping.ToProto(entity, image.Width, image.Height) }, context.CancellationToken).ConfigureAwait(false);
            }
        }
        var finish = FinishReason.Unspecified;
        double queueMs = 0;
        double ttftMs = 0;
        var cachedPromptTokens = 0;
        await foreach (var message in generation.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
        {
            for (var t = 0; t < message.TokenIds.Count; t++)
            {
                var id = message.TokenIds[t];
                if (generated.Count == 0)
                {
                    ttftMs = sinceArrival.Elapsed.TotalMilliseconds;
                }
                generated.Add((int)id);
                var tokenLogprob = logprobs?.Add((int)id, t < message.Logprobs.Count ? message.Logprobs[t] : null);
                var events = parser.Push((int)id);
                if (stream is not null)
                {
                    await WriteEventsAsync(stream, events, [(uint)id], tokenLogprob, logprobs, image, context).ConfigureAwait(false);
                }
                else
                {
                    Track(events, logprobs);
                }
            }
            if (message.Final is { } final)
            {
                queueMs = final.Timings?.QueueMs ?? 0; // optional in the contract: a worker that sends none must not fail the call
                cachedPromptTokens = (int)(final.Usage?.CachedPromptTokens ?? 0);
                finish = final.FinishReason switch
                {
                    DecodeFinishReason.Eos => FinishReason.Eos,
                    DecodeFinishReason.StopSequence => FinishReason.StopSequence,
                    _ => FinishReason.Length,
                };
            }
            if (input.StopStrings.Count > 0 && HitStopString(generated, input.StopStrings))
            {
                finish = FinishReason.StopSequence;
                break; // disposing the generation cancels the decoder call and frees its slot
            }
        }
        if (finish == FinishReason.Unspecified)
        {
            var status = generation.GetStatus();
            throw new RpcException(status.StatusCode == StatusCode.OK
                ? new Status(StatusCode.Internal, "The decoder stream ended without a final message.")
                : status);
        }

        var completion = parser.Complete();
        if (stream is not null)
        {
            await WriteEventsAsync(stream, completion.Events, [], null, logprobs, image, context).ConfigureAwait(false);
        }
        else
        {
            Track(completion.Events, logprobs);
        }
        return new GenerationOutcome(completion.Result, parser.PromptText, generated, finish, queueMs, ttftMs, generation.Address,
            logprobs?.Complete(completion.Result))
        {
            CachedPromptTokens = cachedPromptTokens,
        };
    }

    /// <summary>Box confidences follow the parser's entities even when nothing is streamed (merged phrase grounding).</summary>
    private static void Track(IReadOnlyList<GroundingStreamEvent> events, LogprobTracker? logprobs)
    {
        foreach (var e in events)
        {
            switch (e)
            {
                case GroundingEntityFound found:
                    logprobs?.Claim(found.Entity);
                    break;
                case GroundingCaptionRestarted:
                    logprobs?.Restart();
                    break;
            }
        }
    }

    private bool HitStopString(List<int> generated, IReadOnlyList<string> stops)
    {
        var text = tokenizer.Decode(generated);
        return stops.Any(s => text.Contains(s, StringComparison.Ordinal));
    }

    /// <summary>
    /// Writes one token's events; its id goes with the first delta. With log-probabilities every token is sent once:
    /// a token that adds no text (a tag, a patch) comes in an empty delta before its other events.
    /// </summary>
    private static async Task WriteEventsAsync(IServerStreamWriter<GenerateResponse> stream, IReadOnlyList<GroundingStreamEvent> events,
        uint[] tokenIds, TokenLogprob? tokenLogprob, LogprobTracker? logprobs, EncodedImage image, ServerCallContext context)
    {
        var idsSent = false;
        if (tokenLogprob is not null && !events.Any(e => e is GroundingTextDelta))
        {
            var carrier = new TextDelta();
            carrier.TokenIds.Add(tokenIds);
            carrier.Logprobs.Add(tokenLogprob);
            await stream.WriteAsync(new GenerateResponse { Delta = carrier }, context.CancellationToken).ConfigureAwait(false);
            idsSent = true;
        }
        foreach (var e in events)
        {
            GenerateResponse? message = e switch
            {
                GroundingTextDelta delta => new GenerateResponse { Delta = new TextDelta { Text = delta.Text } },
                GroundingEntityFound found => new GenerateResponse
                {
                    Entity = EntityMapping.ToProto(found.Entity, image.Width, image.Height, logprobs?.Claim(found.Entity)),
                },
                GroundingCaptionRestarted => new GenerateResponse { Restart = new CaptionRestart() },
                _ => null,
            };
            if (e is GroundingCaptionRestarted)
            {
                logprobs?.Restart();
            }
            if (message is null)
            {
                continue;
            }
            if (message.Delta is not null && !idsSent)
            {
                message.Delta.TokenIds.Add(tokenIds);
                if (tokenLogprob is not null)
                {
                    message.Delta.Logprobs.Add(tokenLogprob);
                }
                idsSent = true;
            }
            await stream.WriteAsync(message, context.CancellationToken).ConfigureAwait(false);
        }
    }
}
