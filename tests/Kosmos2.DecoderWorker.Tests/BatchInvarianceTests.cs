
namespace Kosmos2.DecoderWorker.Tests;

/// <summary>
/// DESIGN.md's promise: a request's greedy output is identical whether it ran alone or with others of any length
/// joining at any step — checked against the reference's own tokens for every golden case and batch row.
/// </summary>
public sealed class BatchInvarianceTests
{
    [Fact]
    [Trait("Category", "Golden")]
    public async Task Every_golden_case_alone_all_together_and_with_staggered_arrivals_gives_the_reference_tokens()
    {
        var cases = GoldenPrompts.Cases();
        Assert.NotEmpty(cases);
        await using var worker = await DecoderWorkerHost.StartAsync();

        foreach (var prompt in cases)
        {
            var (tokens, _, _) = await worker.GenerateAsync(prompt.ToRequest());
            Assert.True(prompt.ExpectedNewTokens.SequenceEqual(tokens), $"{prompt.Name} alone: got [{string.Join(", ", tokens)}]");
        }

        var together = await Task.WhenAll(cases.Select(p => worker.GenerateAsync(p.ToRequest())));
        for (var i = 0; i < cases.Count; i++)
        {
            Assert.True(cases[i].ExpectedNewTokens.SequenceEqual(together[i].Tokens), $"{cases[i].Name} together: got [{string.Join(", ", together[i].Tokens)}]");
        }

        // Seeded random arrivals: each case joins while others are mid-stream (a long ignore-eos stream keeps the batch busy).
        var random = new Random(20261126);
        var background = cases[0].ToRequest(maxNewTokens: 150);
        background.Stopping.IgnoreEos = true;
        var busy = worker.GenerateAsync(background);
        var staggered = cases.Select(async p =>
        {
            await Task.Delay(random.Next(0, 400));
            return await worker.GenerateAsync(p.ToRequest());
        }).ToList();
        var results = await Task.WhenAll(staggered);
        for (var i = 0; i < cases.Count; i++)
        {
            Assert.True(cases[i].ExpectedNewTokens.SequenceEqual(results[i].Tokens), $"{cases[i].Name} staggered: got [{string.Join(", ", results[i].Tokens)}]");
        }
        Assert.Equal(150, (await busy).Tokens.Count);
        Assert.True((await worker.InfoAsync()).Steps > 0);
    }

    [Fact]
    [Trait("Category", "Golden")]
    public async Task Golden_batch_rows_in_their_own_slots_give_the_reference_tokens()
    {
        var rows = GoldenPrompts.BatchRows();
        Assert.NotEmpty(rows);
        await using var worker = await DecoderWorkerHost.StartAsync();

        var results = await Task.WhenAll(rows.Select(r => worker.GenerateAsync(r.ToRequest())));

        for (var i = 0; i < rows.Count; i++)
        {
            Assert.True(rows[i].ExpectedNewTokens.SequenceEqual(results[i].Tokens), $"{rows[i].Name}: got [{string.Join(", ", results[i].Tokens)}]");
        }
    }
}
