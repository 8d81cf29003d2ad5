namespace Kosmos2.Engine;

/// <summary>
/// The log-probability of one picked token under the distribution it was drawn from, and the best alternatives of
/// that distribution (best first). Plain data from the runner, passed through to the request's sink.
/// </summary>
public sealed record TokenLogprobs(float Logprob, IReadOnlyList<int> TopTokenIds, IReadOnlyList<float> TopLogprobs);
