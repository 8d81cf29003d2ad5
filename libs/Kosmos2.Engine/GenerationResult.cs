namespace Kosmos2.Engine;

/// <summary>The one final event of an accepted request.</summary>
/// <param name="RequestId">The engine's id from <see cref="SubmitResult.RequestId"/>.</param>
/// <param name="Reason">Why it ended.</param>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="GeneratedTokenIds">Every generated id, including a final <c>&lt;/s&gt;</c> or stop sequence (as HF returns them).</param>
/// <param name="Timings">Where its time went.</param>
/// <param name="Error">What failed, for <see cref="FinishReason.Error"/>; otherwise null.</param>
public sealed record GenerationResult(
    long RequestId,
    FinishReason Reason,
    int PromptTokens,
    IReadOnlyList<int> GeneratedTokenIds,
    RequestTimings Timings,
    string? Error = null)
{
    /// <summary>Prompt tokens whose KV rows came from the prefix cache instead of a prefill (0 without a hit).</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>
    /// For <see cref="FinishReason.QueueTimedOut"/>: the wait for a slot the engine forecast when it refused the request
    /// before the bound (null when it waited the bound out), a fair retry hint.
    /// </summary>
    public TimeSpan? ForecastQueueWait { get; init; }

    /// <summary>Tokens generated.</summary>
    public int GeneratedTokens => GeneratedTokenIds.Count;
}
