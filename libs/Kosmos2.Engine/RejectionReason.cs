namespace Kosmos2.Engine;

/// <summary>Why <see cref="GenerationEngine.Submit"/> refused a request; nothing was generated for it.</summary>
public enum RejectionReason
{
    /// <summary>The waiting queue is full; retry later (RESOURCE_EXHAUSTED).</summary>
    QueueFull = 1,

    /// <summary>Prompt + max new tokens exceed one KV slot; it can never run (OUT_OF_RANGE / INVALID_ARGUMENT).</summary>
    TooLong = 2,

    /// <summary>The request itself is malformed (empty prompt, max new tokens &lt; 1, empty stop sequence).</summary>
    Invalid = 3,

    /// <summary>The engine loop has stopped (UNAVAILABLE).</summary>
    ShuttingDown = 4,
}
