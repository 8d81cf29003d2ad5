namespace Kosmos2.Engine;

/// <summary>Stop conditions, checked after each appended token, in HF's precedence: eos, stop sequence, length.</summary>
internal static class StopChecker
{
    public static FinishReason? Check(IReadOnlyList<int> generated, StoppingParameters stopping, int eosTokenId)
    {
        if (!stopping.IgnoreEos && generated[^1] == eosTokenId)
        {
            return FinishReason.Eos;
        }
        if (stopping.StopSequences is { } stops)
        {
            foreach (var stop in stops)
            {
                if (EndsWith(generated, stop))
                {
                    return FinishReason.StopSequence;
                }
            }
        }
        return generated.Count >= stopping.MaxNewTokens ? FinishReason.Length : null;
    }

    private static bool EndsWith(IReadOnlyList<int> generated, int[] stop)
    {
        var offset = generated.Count - stop.Length;
        if (offset < 0)
        {
            return false;
        }
        for (var i = 0; i < stop.Length; i++)
        {
            if (generated[offset + i] != stop[i])
            {
                return false;
            }
        }
        return true;
    }
}
