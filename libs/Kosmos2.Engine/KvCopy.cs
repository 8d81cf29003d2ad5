namespace Kosmos2.Engine;

/// <summary>
/// Copy KV cache indices [0, <see cref="Tokens"/>) of slot <see cref="SourceSlot"/> into slot <see cref="TargetSlot"/>
/// (every layer, keys and values) before the step's forward: a new request starts from rows another sequence already
/// computed for the same image and token ids (the prefix cache, <see cref="EngineOptions.PrefixCacheSlots"/>).
/// </summary>
/// <param name="SourceSlot">A slot whose rows [0, Tokens) hold the shared prefix (a cached finished sequence or a running one).</param>
/// <param name="TargetSlot">The new request's slot.</param>
/// <param name="Tokens">Rows to copy.</param>
public readonly record struct KvCopy(int SourceSlot, int TargetSlot, int Tokens);
