using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// <c>kosmos2 batch</c> against a cluster too small for what it sends: one decoder slot, one waiting place, and a gateway
/// that passes the decoder's RESOURCE_EXHAUSTED straight back. The same burst sent as plain calls is refused; the batch
/// waits out the refusals (giving its places up) and every input succeeds.
/// </summary>
public sealed class BatchOverloadTests
{
    private const int Inputs = 12;

    [Fact]
    public async Task Refusals_under_overload_are_waited_out_and_every_input_succeeds()
    {
        await using var cluster = await LocalCluster.StartAsync(new Dictionary<string, string>
        {
            ["Decoder__MaxRunning"] = "1",
            ["Decoder__MaxWaiting"] = "1",
            ["Gateway__DecoderMaxAttempts"] = "1",
        });
        var folder = Directory.CreateTempSubdirectory("kosmos2-batch-overload-");
        try
        {
            var image = GoldenUpFixture.Images[0];
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(cluster.Gateway.Channel);
            var bytes = ByteString.CopyFrom(await File.ReadAllBytesAsync(image));
            var burst = await Task.WhenAll(Enumerable.Range(0, Inputs).Select(_ => StatusOfAsync(client, bytes)));
            Assert.Contains(StatusCode.ResourceExhausted, burst); // the cluster really is too small for this load

            var manifest = Path.Combine(folder.FullName, "m.jsonl");
            File.WriteAllLines(manifest, Enumerable.Range(0, Inputs).Select(i => JsonSerializer.Serialize(new { id = $"i{i}", image, task = "caption" })));
            var output = Path.Combine(folder.FullName, "out.jsonl");
            var run = await CliProcess.RunAsync(
                ["batch", manifest, "--output", output, "--gateway", cluster.Gateway.Address, "--concurrency", Inputs.ToString(),
                 "--max-new-tokens", "8", "--max-retries", "0"], timeoutSeconds: 600);

            Assert.True(run.ExitCode == 0, $"batch exited {run.ExitCode}\n{run.Stderr}\n{string.Join('\n', File.ReadLines(output))}");
            var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Equal(Inputs, lines.Count);
            Assert.All(lines, l => Assert.Equal("OK", l["status"]!.GetValue<string>()));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static async Task<StatusCode> StatusOfAsync(Contracts.V1.Kosmos2.Kosmos2Client client, ByteString image)
    {
        try
        {
            using var call = client.Generate(new GenerateRequest
            {
                Image = new Image { Data = image },
                Task = TaskKind.BriefCaption,
                Stopping = new StoppingParameters { MaxNewTokens = 8 },
            }, deadline: DateTime.UtcNow.AddMinutes(2));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }
}
