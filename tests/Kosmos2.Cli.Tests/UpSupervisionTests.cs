using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// <c>kosmos2 up</c> supervises what it started: a worker or Redis killed with SIGKILL is started again and the cluster
/// serves again; chat sessions survive a Redis crash (append-only file); a child that keeps crashing stops the cluster
/// with its log tail and leaves nothing running.
/// </summary>
public sealed class UpSupervisionTests
{
    [Fact]
    public async Task A_killed_redis_or_decoder_is_restarted_the_cluster_serves_again_and_a_chat_session_survives()
    {
        var port = FreePort.Next();
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString()]);
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(channel);
        var image = new Image { Data = ByteString.CopyFrom(File.ReadAllBytes(GoldenCase.All()[0].Image)) };
        var session = await client.CreateSessionAsync(new CreateSessionRequest
        {
            Image = image,
            Options = new SessionOptions { Stopping = new StoppingParameters { MaxNewTokens = 4 } },
        });
        Assert.Equal(0u, (await TurnAsync(client, session.Id, "What is this?")).TurnIndex);

        // Redis crashes: it comes back from its append-only file with the session, and the next turn continues it.
        var redis = up.Child("redis-server") ?? throw new InvalidOperationException("no redis-server under up");
        UpProcess.KillHard(redis);
        GenerateResult? turn2 = null;
        await Poll.UntilAsync(async () =>
        {
            try
            {
                turn2 = await TurnAsync(client, session.Id, "And now?");
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.FailedPrecondition)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the session's next turn after a Redis crash");
        Assert.Equal(1u, turn2!.TurnIndex);
        Assert.NotEqual(redis, up.Child("redis-server"));

        // The decoder crashes: requests fail fast while it is down, and succeed once it is back.
        var decoder = up.Child("Kosmos2.DecoderWorker") ?? throw new InvalidOperationException("no decoder under up");
        UpProcess.KillHard(decoder);
        await Poll.UntilAsync(async () =>
        {
            try
            {
                using var call = client.Generate(new GenerateRequest { Image = image, Task = TaskKind.BriefCaption, Stopping = new StoppingParameters { MaxNewTokens = 3 } },
                    deadline: DateTime.UtcNow.AddSeconds(30));
                await foreach (var _ in call.ResponseStream.ReadAllAsync())
                {
                }
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(120), "a caption after the decoder crashed");
        Assert.NotNull(up.Child("Kosmos2.DecoderWorker"));
        Assert.NotEqual(decoder, up.Child("Kosmos2.DecoderWorker"));
        Assert.Contains("decoder-worker restarted", up.Stderr);
        Assert.Contains("redis restarted", up.Stderr);

        await up.StopAndAssertCleanAsync();
    }

    [Fact]
    public async Task A_child_that_crashes_five_times_in_a_minute_stops_the_cluster_with_its_log_tail()
    {
        var port = FreePort.Next();
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32", "--port", port.ToString()]);
        var started = up.Children;

        for (var crash = 1; crash <= 5; crash++)
        {
            int? redis = null;
            await Poll.UntilAsync(() => (redis = up.Child("redis-server")) is not null, TimeSpan.FromSeconds(30), $"redis before crash {crash}");
            UpProcess.KillHard(redis!.Value);
            await Poll.UntilAsync(() => UpProcess.IsGone(redis.Value), TimeSpan.FromSeconds(10), $"redis to die ({crash})");
        }

        Assert.Equal(1, await up.WaitForExitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains("redis crashed 5 times within a minute", up.Stderr);
        Assert.Contains("Last lines of", up.Stderr);
        Assert.All(started, pid => Assert.True(UpProcess.IsGone(pid), $"{pid} still runs after up stopped"));
    }

    private static async Task<GenerateResult> TurnAsync(Contracts.V1.Kosmos2.Kosmos2Client client, string sessionId, string text)
    {
        using var call = client.SendTurn(new SendTurnRequest { SessionId = sessionId, Text = text }, deadline: DateTime.UtcNow.AddSeconds(30));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        return result ?? throw new InvalidOperationException("no result");
    }
}
