using System.Diagnostics;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Quotas;
using Kosmos2.Gateway.Routing;
using Kosmos2.Gateway.Validation;
using Kosmos2.Processing.Prompts;
using Kosmos2.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Generation;

/// <summary>
/// <c>Generate</c>: validates, encodes the image, plans the task's prompts and streams their generation. Phrase grounding
/// of several phrases runs one generation per phrase, batched together by the decoder, streamed through one writer.
/// </summary>
public sealed class GenerateHandler(IOptions<GatewayOptions> options, GenerationRunner runner, GatewayTokenizer tokenizer,
    GenerateResults results, GatewayMetrics metrics, TenantQuotas quotas, DecoderPool decoders)
{
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var arrival = Stopwatch.StartNew();
        RequestValidator.ValidateImage(request.Image, _options);
        RequestValidator.ValidateText(request.Prompt, "prompt", _options);
        RequestValidator.ValidateText(request.Text, "text", _options);
        RequestValidator.ValidateRegions(request.Regions, _options);
        RequestValidator.ValidateSampling(request.Sampling, _options, tokenizer.Tokenizer.VocabSize);
        var maxNewTokens = RequestValidator.ValidateStopping(request.Stopping, _options);
        RequestValidator.ValidatePhrases(request.Phrases, _options);

        // Phrase grounding runs one generation (a decoder slot) per phrase: the call holds one in-flight stream of its
        // tenant's budget, the other phrases take theirs here, before any work.
        var tenant = context.GetTenant();
        var fanOut = request.Task == TaskKind.PhraseGrounding ? request.Phrases.Count : 1;
        using var phraseStreams = quotas.TryTakeMore(tenant, fanOut - 1, out var refusal)
            ?? throw RpcErrors.ResourceExhaustedException(refusal.Message, refusal.RetryAfter);

        using var decoderPlaces = await decoders.ReserveAsync(fanOut, context.CancellationToken).ConfigureAwait(false);

        var image = await runner.EncodeImageAsync(request.Image, tenant.EmbeddingCacheSalt, context).ConfigureAwait(false);
        RequestValidator.ValidateRegions(request.Regions, _options, image.Width, image.Height);
        var sampling = DecodeSamplingOf(request.Sampling);
        var stopStrings = request.Stopping?.StopSequences.ToList() ?? [];
        var inputs = TaskPrompts.Plan(request, image.Width, image.Height).Select(p => Input(p, maxNewTokens, sampling, stopStrings)).ToList();

        var outcomes = inputs.Count == 1
            ? [await runner.RunAsync(inputs[0], image, responseStream, arrival, context).ConfigureAwait(false)]
            : await RunMergedAsync(inputs, image, responseStream, arrival, context).ConfigureAwait(false);
        var result = results.Build(inputs.Zip(outcomes, (i, o) => new GenerationPart(i, o)).ToList(), image, arrival);
        await responseStream.WriteAsync(new GenerateResponse { Result = result }, context.CancellationToken).ConfigureAwait(false);
        metrics.RecordGeneration(result.Timings.TimeToFirstTokenMs / 1000, (int)result.Usage.PromptTokens, (int)result.Usage.GeneratedTokens);
    }

    /// <summary>The public sampling as the decoder takes it (0 = unset stays 0: the decoder reads it as "off").</summary>
    public static DecodeSampling DecodeSamplingOf(Contracts.V1.SamplingParameters? sampling) => new()
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

    /// <summary>Runs every phrase's generation at once; their messages reach the client through one <see cref="PhraseStreamMerger"/>.</summary>
    private async Task<GenerationOutcome[]> RunMergedAsync(List<GenerationInput> inputs, EncodedImage image,
        IServerStreamWriter<GenerateResponse> responseStream, Stopwatch arrival, ServerCallContext context)
    {
        var merger = new PhraseStreamMerger(inputs.Count);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        var pump = merger.PumpAsync(responseStream, failed.Token);
        var generations = Task.WhenAll(inputs.Select(async (input, k) =>
        {
            try
            {
                var outcome = await runner.RunAsync(input, image, merger.Writer(k), arrival, context).ConfigureAwait(false);
                merger.Complete(k);
                return outcome;
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false); // the error goes out, not the other phrases' messages
                throw;
            }
        }));
        try
        {
            var outcomes = await generations.ConfigureAwait(false);
            await pump.ConfigureAwait(false);
            return outcomes;
        }
        catch (Exception) when (!generations.IsCompletedSuccessfully)
        {
            await pump.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false); // stopped; the generation's error is the one to report
            throw;
        }
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
}
