using Grpc.Core;
using Grpc.Net.Client;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Cli.Tests;

/// <summary>
/// The same answer under any load, in bfloat16 (the default dtype of <c>kosmos2 up</c>) with the decoder's default
/// kernels: every golden case gets the same tokens sent alone and sent with all the others at once, because each of a
/// sequence's products and attention reductions runs in one order whatever else is in the batch (libs/Kosmos2.Kernels).
/// </summary>
public sealed class Bf16LoadInvarianceTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Every_golden_case_gets_the_same_tokens_alone_and_co_batched_in_bf16()
    {
        var port = FreePort.Next();
        await using var up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--port", port.ToString()]);
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = new Contracts.V1.Kosmos2.Kosmos2Client(channel);
        var cases = GoldenCase.All();

        var alone = new List<int[]>();
        foreach (var golden in cases)
        {
            alone.Add(await TokensAsync(client, golden));
        }
        Assert.All(alone, tokens => Assert.NotEmpty(tokens));

        // Round 1: all at once in file order. Round 2: in reverse order, each joining a few milliseconds after the
        // one before, so each case meets the others at another place in the batch and mid-way through their decoding.
        for (var round = 1; round <= 2; round++)
        {
            var order = round == 1 ? Enumerable.Range(0, cases.Count).ToList() : Enumerable.Range(0, cases.Count).Reverse().ToList();
            var stagger = round == 1 ? 0 : 3;
            var together = await Task.WhenAll(order.Select(async (index, position) =>
            {
                await Task.Delay(position * stagger);
                return (Index: index, Tokens: await TokensAsync(client, cases[index]));
            }));
            foreach (var (index, tokens) in together)
            {
                Assert.True(alone[index].SequenceEqual(tokens),
                    $"round {round}, {cases[index].Name}: alone [{string.Join(", ", alone[index])}], co-batched [{string.Join(", ", tokens)}]");
            }
        }
        await up.StopAndAssertCleanAsync();
    }

    private static async Task<int[]> TokensAsync(Contracts.V1.Kosmos2.Kosmos2Client client, GoldenCase golden)
    {
        using var call = client.Generate(golden.Request(), deadline: DateTime.UtcNow.AddSeconds(120));
        GenerateResult? result = null;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            result ??= message.Result;
        }
        return result?.TokenIds.Select(id => (int)id).ToArray() ?? throw new InvalidOperationException($"{golden.Name}: no result");
    }
}
