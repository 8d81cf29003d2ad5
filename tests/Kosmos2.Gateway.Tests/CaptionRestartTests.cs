using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// The reference keeps only the text after the LAST <c>&lt;/image&gt;</c>. When the model writes another one mid-caption,
/// the stream must say so (a <c>restart</c>), or the deltas a client has shown would not add up to the final text.
/// The real gateway (golden tokenizer) over a decoder that streams a scripted caption.
/// </summary>
public sealed class CaptionRestartTests
{
    [Fact]
    public async Task A_second_image_end_tag_streams_a_restart_after_which_deltas_and_entities_add_up_to_the_result()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        int[] caption =
        [
            .. tokenizer.Encode(" a dog"),
            tokenizer.ImageEndTokenId,
            .. tokenizer.Encode(" two"),
            tokenizer.PhraseStartId, .. tokenizer.Encode(" cats"), tokenizer.PhraseEndId,
            tokenizer.ObjectStartId, tokenizer.PatchIndexId(3), tokenizer.PatchIndexId(900), tokenizer.ObjectEndId,
            .. tokenizer.Encode(" play"),
            Kosmos2Tokenizer.EosId,
        ];
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.Script);
        workers.Script = caption.Select(id => (uint)id).ToArray();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
        });
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
        var request = new GenerateRequest
        {
            Image = new Image { Data = Google.Protobuf.ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 3)) },
            Prompt = "<grounding>An image of",
        };

        using var call = client.Generate(request);
        var events = new List<GenerateResponse>();
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            events.Add(message);
        }

        var result = Assert.Single(events, e => e.Result is not null).Result;
        var restart = Assert.Single(events.Select((e, i) => (e, i)), p => p.e.Restart is not null).i;
        var before = string.Concat(events.Take(restart).Where(e => e.Delta is not null).Select(e => e.Delta.Text));
        var after = events.Skip(restart + 1).ToList();
        Assert.StartsWith("An image of a dog", before, StringComparison.Ordinal); // shown before the model restarted
        Assert.Equal("two cats play", result.Text);
        Assert.Equal(result.Text, string.Concat(after.Where(e => e.Delta is not null).Select(e => e.Delta.Text)));
        Assert.Equal(result.Entities, after.Where(e => e.Entity is not null).Select(e => e.Entity));
        Assert.Equal("cats", Assert.Single(result.Entities).Phrase);
    }
}
