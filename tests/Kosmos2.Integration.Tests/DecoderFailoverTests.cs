using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// Two decoders behind one gateway, one killed with SIGKILL while it runs streams and holds requests not yet answered
/// (resilience suite scenario 1, in CI): its streams end UNAVAILABLE at once; the gateway offers each unanswered request
/// to the other decoder, where it succeeds; restarted on its port, the killed decoder takes traffic again.
/// </summary>
public sealed class DecoderFailoverTests
{
    private const int Slots = 4;
    private const int ViaGateway = 8;

    /// <summary>How long a client may wait for a stream of a dead decoder to end (the suite's target is 1 s; CI machines are loaded).</summary>
    private static readonly TimeSpan FailFast = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_killed_decoders_streams_fail_fast_its_unanswered_requests_succeed_on_the_other_and_restarted_it_serves_again()
    {
        await using var vision = await ServiceProcess.StartHealthyAsync("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"),
            new Dictionary<string, string> { ["Vision__ModelDir"] = RepoPaths.GoldenModelDir, ["Vision__DType"] = "float32", ["Vision__Device"] = "cpu" },
            TimeSpan.FromSeconds(120));
        var victimPort = FreePort.Next();
        var victim = await DirectDecoder.StartAsync(Slots, victimPort);
        await using var survivor = await DirectDecoder.StartAsync(Slots);
        var gatewayEnvironment = new Dictionary<string, string>(ClusterFixture.ApiKeys)
        {
            ["Gateway__TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway__VisionWorkers"] = vision.Address,
            ["Gateway__DecoderWorkers"] = $"{victim.Address},{survivor.Address}",
        };
        await using var gateway = await ServiceProcess.StartHealthyAsync("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), gatewayEnvironment, TimeSpan.FromSeconds(60));
        using var releaseSurvivor = new CancellationTokenSource();
        try
        {
            var api = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
            var victimClient = new DecoderWorker.DecoderWorkerClient(victim.Channel);
            var survivorClient = new DecoderWorker.DecoderWorkerClient(survivor.Channel);
            var image = new Contracts.V1.Image { Data = ByteString.CopyFrom(await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath)) };
            await DirectDecoder.CaptionAsync(api, image); // encoded and cached, the gateway warm

            // Every slot of both decoders held by long streams sent straight to them (the gateway does not count them),
            // so the gateway's eight requests queue on both, balanced by its own in-flight counts, and none is answered.
            var clock = Stopwatch.StartNew();
            var longest = await DirectDecoder.RunningLengthAsync(victimClient, seconds: 60);
            var onVictim = Enumerable.Range(0, Slots).Select(_ => DirectDecoder.RunAsync(victimClient, longest, clock)).ToList();
            var onSurvivor = Enumerable.Range(0, Slots).Select(_ => DirectDecoder.RunAsync(survivorClient, longest, clock, releaseSurvivor.Token)).ToList();
            await DirectDecoder.WaitForLoadAsync(victimClient, Slots, 0);
            await DirectDecoder.WaitForLoadAsync(survivorClient, Slots, 0);
            var viaGateway = Enumerable.Range(0, ViaGateway).Select(_ => DirectDecoder.CaptionAsync(api, image)).ToList();
            var queuedOnVictim = 0;
            await Poll.UntilAsync(async () =>
            {
                var (v, s) = (await victimClient.GetInfoAsync(new DecoderInfoRequest()), await survivorClient.GetInfoAsync(new DecoderInfoRequest()));
                queuedOnVictim = (int)v.Waiting;
                return v.Waiting >= 1 && v.Waiting + s.Waiting == ViaGateway;
            }, TimeSpan.FromSeconds(60), "the gateway's requests to queue on both decoders");

            var killedAt = clock.Elapsed;
            victim.Crash();
            var killed = await Task.WhenAll(onVictim);
            await releaseSurvivor.CancelAsync(); // the survivor's slots free: the moved requests run there
            var results = await Task.WhenAll(viaGateway);

            Assert.All(killed, k => Assert.Equal(StatusCode.Unavailable, k.Status));
            Assert.All(killed, k => Assert.True(k.EndedAt - killedAt < FailFast,
                $"a stream of the killed decoder ended {(k.EndedAt - killedAt).TotalSeconds:F1} s after the kill"));
            Assert.All(results, r => Assert.True(r.Usage.GeneratedTokens > 0));
            Assert.Single(results.Select(r => string.Join(',', r.TokenIds)).Distinct()); // greedy, same weights: the same answer wherever it ran
            var moved = gateway.Tail(400).Split('\n').Count(l => l.Contains($":{victimPort}", StringComparison.Ordinal)
                                                                 && l.Contains("refused a generation with Unavailable", StringComparison.Ordinal));
            Assert.True(moved >= queuedOnVictim, $"{queuedOnVictim} requests were queued on the killed decoder, the gateway moved {moved}:\n{gateway.Tail(40)}");
            await Task.WhenAll(onSurvivor);

            // Restarted on its port, it is offered requests again (the gateway reconnects within its 5 s backoff).
            victim = await DirectDecoder.StartAsync(Slots, victimPort);
            var restartedClient = new DecoderWorker.DecoderWorkerClient(victim.Channel);
            await Poll.UntilAsync(async () =>
            {
                await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => DirectDecoder.CaptionAsync(api, image)));
                return (await restartedClient.GetInfoAsync(new DecoderInfoRequest())).Steps > 0;
            }, TimeSpan.FromSeconds(30), "the restarted decoder to take traffic");
        }
        finally
        {
            await releaseSurvivor.CancelAsync();
            await victim.DisposeAsync();
        }
    }
}
