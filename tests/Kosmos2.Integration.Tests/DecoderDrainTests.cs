using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>
/// Drain on SIGTERM (a rolling update, a scale-down, a node drain): the decoder answers every request still waiting for
/// a slot with UNAVAILABLE at once, so the gateway offers it to another decoder, and lets its running streams finish.
/// Four KV slots, so of twelve requests four run and eight queue.
/// </summary>
public sealed class DecoderDrainTests
{
    private const int Slots = 4;
    private const int Queued = 8;

    [Fact]
    public async Task On_sigterm_queued_requests_are_refused_at_once_and_running_streams_finish()
    {
        var decoder = await StartDecoderAsync();
        try
        {
            var client = new DecoderWorker.DecoderWorkerClient(decoder.Channel);
            var longest = await DirectDecoder.RunningLengthAsync(client, RunningSeconds);
            var clock = Stopwatch.StartNew();
            var calls = Enumerable.Range(0, Slots + Queued).Select(i => DirectDecoder.RunAsync(client, longest, clock)).ToList();
            await DirectDecoder.WaitForLoadAsync(client, Slots, Queued);

            var sigterm = clock.Elapsed;
            var stopped = decoder.StopAsync(TimeSpan.FromSeconds(150));
            var outcomes = await Task.WhenAll(calls);

            var refused = outcomes.Where(o => o.Status != StatusCode.OK).ToList();
            var finished = outcomes.Where(o => o.Status == StatusCode.OK).ToList();
            Assert.Equal(Queued, refused.Count);
            Assert.All(refused, r => Assert.Equal(StatusCode.Unavailable, r.Status));
            Assert.All(refused, r => Assert.Equal(0, r.Tokens)); // nothing was streamed: the gateway may send it elsewhere
            Assert.Equal(Slots, finished.Count);
            Assert.All(finished, f => Assert.Equal(longest, f.Tokens)); // every running stream ran to its length
            // "At once": every refusal came before the first running stream ended, not after the drain.
            Assert.True(refused.Max(r => r.EndedAt) < finished.Min(f => f.EndedAt),
                $"refusals ended by {refused.Max(r => r.EndedAt - sigterm).TotalMilliseconds:F0} ms after SIGTERM, the first running stream at {finished.Min(f => f.EndedAt - sigterm).TotalMilliseconds:F0} ms");
            Assert.Equal(0, await stopped);
        }
        finally
        {
            await decoder.DisposeAsync();
        }
    }

    [Fact]
    public async Task Through_a_gateway_with_a_second_decoder_every_request_of_a_draining_decoder_succeeds()
    {
        await using var vision = await ServiceProcess.StartHealthyAsync("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"),
            new Dictionary<string, string> { ["Vision__ModelDir"] = RepoPaths.GoldenModelDir, ["Vision__DType"] = "float32", ["Vision__Device"] = "cpu" },
            TimeSpan.FromSeconds(120));
        var first = await StartDecoderAsync();
        // The second decoder's port is known to the gateway from the start; it begins to listen only after the first
        // one was told to stop, so all twelve requests land on the first one and the eight retried ones can only
        // succeed on the second.
        var secondPort = FreePort.Next();
        ServiceProcess? second = null;
        var gatewayEnvironment = new Dictionary<string, string>(ClusterFixture.ApiKeys)
        {
            ["Gateway__TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway__VisionWorkers"] = vision.Address,
            ["Gateway__DecoderWorkers"] = $"{first.Address},http://127.0.0.1:{secondPort}",
            // The retried requests wait (wait-for-ready) while the second decoder loads; a refusal costs an attempt.
            ["Gateway__DecoderMaxAttempts"] = "10",
            // Between the first decoder's drain and the second one's start no decoder is ready; a real deployment
            // keeps one ready, here the gateway must wait for the late one instead of answering UNAVAILABLE at 2 s.
            ["Gateway__WorkerReadyWaitMs"] = "120000",
        };
        await using var gateway = await ServiceProcess.StartHealthyAsync("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"), gatewayEnvironment, TimeSpan.FromSeconds(60));
        try
        {
            var decoderClient = new DecoderWorker.DecoderWorkerClient(first.Channel);
            var api = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
            var image = new Contracts.V1.Image { Data = ByteString.CopyFrom(await File.ReadAllBytesAsync(GoldenCase.All()[0].ImagePath)) };
            // One request through the whole path first: the image is encoded and cached and the gateway's code paths
            // are warm, so the eight below reach the decoder's queue quickly even on a loaded machine (on CI a cold
            // first request took longer than the running streams lasted, and the queue never held eight).
            await DirectDecoder.CaptionAsync(api, image);
            var clock = Stopwatch.StartNew();

            // Four long streams hold the slots (ignore_eos, which only the internal API offers: they run to their
            // length whatever the weights), sent straight to the decoder; the eight requests through the gateway
            // queue behind them.
            var longest = await DirectDecoder.RunningLengthAsync(decoderClient, RunningSecondsBehindGateway);
            var running = Enumerable.Range(0, Slots).Select(_ => DirectDecoder.RunAsync(decoderClient, longest, clock)).ToList();
            await DirectDecoder.WaitForLoadAsync(decoderClient, Slots, 0);
            var viaGateway = Enumerable.Range(0, Queued).Select(_ => DirectDecoder.CaptionAsync(api, image)).ToList();
            await DirectDecoder.WaitForLoadAsync(decoderClient, Slots, Queued);

            var stopped = first.StopAsync(TimeSpan.FromSeconds(150));
            second = await StartDecoderAsync(secondPort);

            var results = await Task.WhenAll(viaGateway);
            Assert.All(results, r => Assert.NotEqual(FinishReason.Unspecified, r.FinishReason));
            Assert.All(results, r => Assert.True(r.Usage.GeneratedTokens > 0));
            // Greedy on the same weights: the retried requests give what any decoder gives.
            Assert.Single(results.Select(r => string.Join(',', r.TokenIds)).Distinct());
            var finished = await Task.WhenAll(running);
            Assert.All(finished, f => Assert.Equal((StatusCode.OK, longest), (f.Status, f.Tokens)));
            Assert.Equal(0, await stopped);
            var secondInfo = await new DecoderWorker.DecoderWorkerClient(second.Channel).GetInfoAsync(new DecoderInfoRequest());
            Assert.True(secondInfo.Steps > 0, "The second decoder served nothing: the gateway did not move the refused requests.");
        }
        finally
        {
            await first.DisposeAsync();
            if (second is not null)
            {
                await second.DisposeAsync();
            }
        }
    }

    /// <summary>Seconds the running streams should still have to go at SIGTERM: the refusals must visibly come first.</summary>
    private const double RunningSeconds = 3;

    /// <summary>
    /// Seconds the running streams last when the queued requests come through a gateway: long enough for eight
    /// requests to pass the gateway and queue behind them on a loaded machine.
    /// </summary>
    private const double RunningSecondsBehindGateway = 20;

    private static Task<ServiceProcess> StartDecoderAsync(int? port = null) => DirectDecoder.StartAsync(Slots, port);
}
