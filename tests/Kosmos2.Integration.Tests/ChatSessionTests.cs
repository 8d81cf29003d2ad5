using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>Multi-turn referring chat: history kept as exact token ids in Redis, surviving a gateway restart, per tenant.</summary>
public sealed class ChatSessionTests
{
    [Fact]
    public async Task A_three_turn_chat_with_regions_survives_a_gateway_restart_and_is_invisible_to_another_tenant()
    {
        await using var cluster = await LocalCluster.StartAsync(ClusterFixture.ApiKeys);
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
        var png = File.ReadAllBytes(GoldenCase.All()[0].ImagePath);
        var (width, height) = TestImages.PngSize(png);
        var image = new Image { Data = ByteString.CopyFrom(png) };
        // <s> <image>, the image's latent_query_num placeholders, </image>
        var imageBlock = 3 + GoldenModel.LatentQueryNum();
        var session = await client.CreateSessionAsync(new CreateSessionRequest
        {
            Image = image,
            Options = new SessionOptions { Grounding = true, Stopping = new StoppingParameters { MaxNewTokens = 8 } },
        }, ClusterFixture.TenantA);
        Assert.Equal((uint)imageBlock, session.ContextTokens);
        Assert.Equal((uint)width, session.ImageWidth);
        Assert.Equal((uint)height, session.ImageHeight);

        var turn1 = await SendAsync(client, new SendTurnRequest { SessionId = session.Id, Text = "What is this?" });
        var turn2 = await SendAsync(client, new SendTurnRequest
        {
            SessionId = session.Id,
            Text = "What is <phrase>this shape</phrase>?",
            Regions = { new Region { Phrase = "this shape", Frame = BoxFrame.Pixels, Boxes = { new Box { X1 = width / 30, Y1 = height / 12, X2 = width / 2, Y2 = height * 0.8 } } } },
        });
        Assert.Equal(0u, turn1.TurnIndex);
        Assert.Equal(1u, turn2.TurnIndex);

        await cluster.RestartGatewayAsync();
        client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);

        var stored = await client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA);
        Assert.Equal(2, stored.Turns.Count);
        Assert.Equal("What is <phrase>this shape</phrase>?", stored.Turns[1].Text);
        Assert.Single(stored.Turns[1].Regions);
        var turn3 = await SendAsync(client, new SendTurnRequest
        {
            SessionId = session.Id,
            Text = "And here?",
            Regions =
            {
                new Region { Phrase = "here", Boxes = { new Box { X1 = 0.5, Y1 = 0.5, X2 = 0.9, Y2 = 0.9 } } },
                new Region { Phrase = "there", Boxes = { new Box { Patch = new PatchIndexBox { TopLeft = 33, BottomRight = 500 } } } },
                new Region { Phrase = "nowhere" },
            },
        });
        Assert.Equal(2u, turn3.TurnIndex);
        // Every box form in a turn: coordinates, a patch-index pair as given, and a phrase with no box (no <object>).
        Assert.Contains("there</phrase><object><patch_index_0033><patch_index_0500></object>", turn3.RawText);
        Assert.Contains("nowhere</phrase> Answer:", turn3.RawText);

        stored = await client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA);
        Assert.Equal(3, stored.Turns.Count);
        var expectedContext = imageBlock + stored.Turns.Sum(t => (int)(t.PromptTokens + t.GeneratedTokens));
        Assert.Equal((uint)expectedContext, stored.ContextTokens);
        Assert.Equal(stored.Turns[2].Answer, turn3.Text[(turn3.Text.IndexOf("Answer:", StringComparison.Ordinal) + "Answer:".Length)..].Trim());

        var otherTenant = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantB).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, otherTenant.StatusCode);
        var otherTurn = await Assert.ThrowsAsync<RpcException>(() =>
            SendAsync(client, new SendTurnRequest { SessionId = session.Id, Text = "hi" }, ClusterFixture.TenantB));
        Assert.Equal(StatusCode.NotFound, otherTurn.StatusCode);

        Assert.True((await client.DeleteSessionAsync(new DeleteSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA)).Deleted);
        var gone = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetSessionAsync(new GetSessionRequest { SessionId = session.Id }, ClusterFixture.TenantA).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    private static async Task<GenerateResult> SendAsync(Contracts.V1.Kosmos2.Kosmos2Client client, SendTurnRequest request, Metadata? headers = null)
    {
        using var call = client.SendTurn(request, headers ?? ClusterFixture.TenantA);
        var deltas = new List<string>();
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            if (message.Delta is not null)
            {
                deltas.Add(message.Delta.Text);
            }
            result ??= message.Result;
        }
        Assert.NotNull(result);
        Assert.Equal(result.Text, string.Concat(deltas));
        Assert.Equal(request.SessionId, result.SessionId);
        return result;
    }
}
