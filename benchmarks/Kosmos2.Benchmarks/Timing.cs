using System.Diagnostics;

namespace Kosmos2.Benchmarks;

/// <summary>How every figure of these benchmarks is timed.</summary>
internal static class Timing
{
    /// <summary>Median milliseconds of <paramref name="iterations"/> runs, after <paramref name="warmups"/> untimed ones.</summary>
    public static double Median(int iterations, Action action, int warmups = 1)
    {
        for (var i = 0; i < warmups; i++)
        {
            action();
        }
        var times = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times[iterations / 2];
    }
}
