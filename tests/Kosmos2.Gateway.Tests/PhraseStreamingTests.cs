using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>Phrase grounding of several phrases streams like every other task: each phrase's entity as it completes.</summary>
public sealed class PhraseStreamingTests
{
    [Fact]
    public async Task The_first_phrase_entity_arrives_while_the_second_phrase_is_still_generating()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        int[] answer = [tokenizer.ObjectStartId, tokenizer.PatchIndexId(3), tokenizer.PatchIndexId(900), tokenizer.ObjectEndId, Kosmos2Tokenizer.EosId];
        var catPrompt = tokenizer.Encode("<grounding><phrase>a cat</phrase>");
        var dogOnly = tokenizer.Encode("<grounding><phrase>a dog</phrase>").Except(catPrompt).First();
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.Script);
        workers.Script = answer.Select(id => (uint)id).ToArray();
        workers.HoldPromptsWith = (uint)dogOnly; // "a dog" cannot finish until released
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        using var call = client.Generate(new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 6)) },
            Task = TaskKind.PhraseGrounding,
            Phrases = { "a cat", "a dog" },
        }, deadline: DateTime.UtcNow.AddSeconds(60));

        var events = new List<GenerateResponse>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!events.Any(e => e.Entity is not null))
        {
            Assert.True(await call.ResponseStream.MoveNext(timeout.Token), "The stream ended before any entity.");
            events.Add(call.ResponseStream.Current);
        }
        Assert.Equal("a cat", events.Last().Entity.Phrase);
        Assert.DoesNotContain(events, e => e.Result is not null);

        workers.ReleaseAll();
        await foreach (var message in call.ResponseStream.ReadAllAsync(timeout.Token))
        {
            events.Add(message);
        }
        var result = Assert.Single(events, e => e.Result is not null).Result;
        Assert.Equal(result.Text, string.Concat(events.Where(e => e.Delta is not null).Select(e => e.Delta.Text)));
        Assert.Equal(["a cat", "a dog"], result.Entities.Select(e => e.Phrase));
        Assert.Equal(result.Entities, events.Where(e => e.Entity is not null).Select(e => e.Entity)); // spans placed in the merged text
        Assert.All(result.Entities, e => Assert.Equal(e.Phrase, string.Concat(result.Text.EnumerateRunes().Skip((int)e.SpanStart).Take((int)(e.SpanEnd - e.SpanStart)))));
    }
}
