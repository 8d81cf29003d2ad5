namespace Kosmos2.Testing;

/// <summary>A process's resident memory from <c>/proc</c> (Linux), for tests that bound what a service holds.</summary>
public static class ProcessMemory
{
    /// <summary>Resets the process's peak RSS (<c>VmHWM</c>) to its current RSS (clear_refs 5) and returns that RSS in bytes.</summary>
    public static long ResetPeak(int processId)
    {
        File.WriteAllText($"/proc/{processId}/clear_refs", "5");
        return Read(processId, "VmRSS:");
    }

    /// <summary>The resident set size now, in bytes.</summary>
    public static long RssBytes(int processId) => Read(processId, "VmRSS:");

    /// <summary>The peak RSS since start or the last <see cref="ResetPeak"/>, in bytes.</summary>
    public static long PeakBytes(int processId) => Read(processId, "VmHWM:");

    private static long Read(int processId, string field)
    {
        var line = File.ReadLines($"/proc/{processId}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}
