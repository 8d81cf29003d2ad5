namespace Kosmos2.Engine;

/// <summary>
/// Owns the tensors: weights, the KV pool of <see cref="EngineOptions.MaxRunning"/> slots of
/// <see cref="EngineOptions.MaxSequenceTokens"/> tokens each, per-slot image/sampler state, and the logits.
/// The engine calls it only from its loop thread (DESIGN.md: one thread owns every tensor).
/// </summary>
public interface IModelRunner
{
    /// <summary>
    /// Runs one step and returns the sampled ids. An exception fails every request in the plan with
    /// <see cref="FinishReason.Error"/> and frees their slots; the loop goes on.
    /// </summary>
    StepOutput Execute(StepPlan plan);

    /// <summary>
    /// The slot's request has left the batch (finished, aborted or failed): drop its per-slot state. After a failed
    /// <see cref="Execute"/> it comes for every slot of that plan, including slots whose first chunk never ran.
    /// </summary>
    void Release(int slot);
}
