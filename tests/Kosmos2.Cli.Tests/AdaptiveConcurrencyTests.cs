using Kosmos2.Cli.Batch;

namespace Kosmos2.Cli.Tests;

/// <summary>The batch's in-flight limit: waits at the limit, halves on a refusal, grows back after a window of successes.</summary>
public sealed class AdaptiveConcurrencyTests
{
    [Fact]
    public async Task A_refusal_halves_what_was_in_flight_and_successes_grow_it_back_to_the_start()
    {
        var limit = new AdaptiveConcurrency(initial: 4, max: 4);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(limit.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
        }
        var fifth = limit.WaitAsync(CancellationToken.None);
        Assert.False(fifth.IsCompleted);

        limit.OnRefused();
        Assert.Equal(2, limit.Limit);
        limit.Release();
        limit.Release();
        limit.Release();
        // 1 in flight, limit 2: the waiter gets the place freed by the third release.
        await fifth.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(limit.WaitAsync(CancellationToken.None).IsCompleted);

        limit.OnSuccess();
        limit.OnSuccess();
        Assert.Equal(3, limit.Limit);
        for (var i = 0; i < 10; i++)
        {
            limit.OnSuccess();
        }
        Assert.Equal(4, limit.Limit);
    }

    [Fact]
    public void A_burst_of_refusals_from_one_overload_halves_once_and_a_later_overload_halves_again()
    {
        var limit = new AdaptiveConcurrency(initial: 32, max: 32);
        for (var i = 0; i < 32; i++)
        {
            Assert.True(limit.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
        }
        // 16 of the 32 come back refused, one after another, each giving its place up.
        for (var i = 0; i < 16; i++)
        {
            limit.OnRefused();
            limit.Release();
        }
        Assert.Equal(16, limit.Limit);

        // The other 16 (in flight when the limit fell) succeed; then a new overload halves again.
        for (var i = 0; i < 16; i++)
        {
            limit.OnSuccess();
            limit.Release();
        }
        Assert.Equal(17, limit.Limit);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(limit.WaitAsync(CancellationToken.None).IsCompletedSuccessfully);
        }
        limit.OnRefused();
        Assert.Equal(5, limit.Limit);
    }

    [Fact]
    public async Task A_cancelled_waiter_is_skipped_and_never_holds_a_place()
    {
        var limit = new AdaptiveConcurrency(initial: 1, max: 1);
        await limit.WaitAsync(CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var cancelled = limit.WaitAsync(cts.Token);
        var next = limit.WaitAsync(CancellationToken.None);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        limit.Release();
        await next.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(limit.WaitAsync(CancellationToken.None).IsCompleted);
    }
}
