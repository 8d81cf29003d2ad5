using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// A cluster whose services share an internal secret: the gateway sends it on every worker call and serves a golden
/// request end to end, while the workers refuse anyone who calls them directly without it, and a gateway with another
/// secret gets no work done by them.
/// </summary>
public sealed class InternalSecretTests
{
    private const string ApiKey = "internal-secret-test-key";

    private static readonly Metadata WithKey = new() { { "authorization", "Bearer " + ApiKey } };

    [Fact]
    [Trait("Category", "Golden")]
    public async Task The_gateway_with_the_secret_serves_a_golden_request_and_the_workers_refuse_callers_without_it()
    {
        var secret = ClusterEnvironment.NewSecret();
        await using var cluster = await LocalCluster.StartAsync(new Dictionary<string, string>
        {
            [ClusterEnvironment.InternalSecret] = secret,
            ["Auth__ApiKeys__0__Key"] = ApiKey,
            ["Auth__ApiKeys__0__Tenant"] = "internal-secret-tests",
        });
        var golden = GoldenCase.All()[0];

        var result = await GenerateAsync(new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel), golden.Request());

        Assert.True(golden.NewTokenIds.Select(i => (uint)i).SequenceEqual(result.TokenIds), $"{golden}: other tokens than the reference's");
        Assert.Equal(golden.CleanText, result.Text);

        // The same workers, called directly without the secret: the request never reaches the model.
        var vision = new VisionWorker.VisionWorkerClient(cluster.Vision.Channel);
        var encode = await Assert.ThrowsAsync<RpcException>(() => vision.EncodeAsync(new EncodeRequest { Image = golden.Request().Image.Data }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, encode.StatusCode);
        var decoder = new DecoderWorker.DecoderWorkerClient(cluster.Decoder.Channel);
        using (var generate = decoder.Generate(new DecodeRequest { Stopping = new DecodeStopping { MaxNewTokens = 1 } }))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => generate.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        }

        // A second gateway with another secret reaches the same workers but gets no answer out of them.
        await using var stranger = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"),
            new Dictionary<string, string>(ClusterEnvironment.Gateway(
                ClusterEnvironment.Common(RepoPaths.GoldenModelDir, "float32", null, null), RepoPaths.GoldenModelDir,
                cluster.Vision.Address, [cluster.Decoder.Address]))
            {
                [ClusterEnvironment.InternalSecret] = ClusterEnvironment.NewSecret(),
                ["Auth__ApiKeys__0__Key"] = ApiKey,
                ["Auth__ApiKeys__0__Tenant"] = "internal-secret-tests",
            });
        await stranger.WaitHealthyAsync(TimeSpan.FromSeconds(60));
        var failed = await Assert.ThrowsAsync<RpcException>(() => GenerateAsync(new Contracts.V1.Kosmos2.Kosmos2Client(stranger.Channel), golden.Request()));
        // A server-side fault for the caller (its API key is fine), and the gateway's log says what to set.
        Assert.Equal(StatusCode.Internal, failed.StatusCode);
        Assert.DoesNotContain("Internal:Secret", failed.Status.Detail, StringComparison.Ordinal);
        await Poll.UntilAsync(() => stranger.RecentOutput.Contains("Internal:Secret", StringComparison.Ordinal),
            TimeSpan.FromSeconds(5), "the gateway to log what to set");
    }

    private static async Task<GenerateResult> GenerateAsync(Contracts.V1.Kosmos2.Kosmos2Client client, GenerateRequest request)
    {
        using var call = client.Generate(request, WithKey, deadline: DateTime.UtcNow.AddMinutes(2));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            if (message.EventCase == GenerateResponse.EventOneofCase.Result)
            {
                result = message.Result;
            }
        }
        return result ?? throw new InvalidOperationException("No final result.");
    }
}
