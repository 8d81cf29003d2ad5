namespace Kosmos2.Engine;

/// <summary>
/// Receives one request's events. Called on the engine loop thread, so an implementation must return at once
/// (e.g. write to an unbounded channel that the gRPC handler drains): a blocking sink stalls every stream.
/// Exceptions are caught and counted (<see cref="EngineStats.SinkFaults"/>), never allowed to stop the loop.
/// </summary>
public interface IRequestSink
{
    /// <summary>One generated token, in order; at most one per request per step.</summary>
    void OnToken(int tokenId);

    /// <summary>One generated token with its log-probabilities (null unless the request asked); the engine calls this one.</summary>
    void OnToken(int tokenId, TokenLogprobs? logprobs) => OnToken(tokenId);

    /// <summary>The request ended; called exactly once per accepted request, after its last <see cref="OnToken(int)"/>.</summary>
    void OnFinished(GenerationResult result);
}
