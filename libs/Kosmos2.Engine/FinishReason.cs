namespace Kosmos2.Engine;

/// <summary>Why an accepted request ended. Every accepted request ends exactly once.</summary>
public enum FinishReason
{
    /// <summary><c>&lt;/s&gt;</c> was generated (and <see cref="StoppingParameters.IgnoreEos"/> was off).</summary>
    Eos = 1,

    /// <summary><see cref="StoppingParameters.MaxNewTokens"/> tokens were generated.</summary>
    Length = 2,

    /// <summary>The generated ids ended with one of the stop sequences.</summary>
    StopSequence = 3,

    /// <summary>The caller aborted it (cancel or deadline), or the engine shut down before it finished.</summary>
    Aborted = 4,

    /// <summary>The model runner failed on a step that included it; <see cref="GenerationResult.Error"/> says how.</summary>
    Error = 5,

    /// <summary>
    /// Never admitted: the engine stopped admitting (<see cref="GenerationEngine.StopAdmitting"/>, a drain) while the
    /// request waited for a slot. Nothing was generated, so it may be sent to another worker.
    /// </summary>
    Refused = 6,

    /// <summary>
    /// Never admitted: it waited longer than <see cref="EngineOptions.MaxQueueWait"/> for a slot, or the engine forecast
    /// that it would (<see cref="GenerationResult.ForecastQueueWait"/>). Nothing was generated, so it may be retried, here
    /// later or on another worker.
    /// </summary>
    QueueTimedOut = 7,
}
