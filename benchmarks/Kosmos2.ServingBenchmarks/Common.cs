using System.Diagnostics;
using Kosmos2.Launch;

namespace Kosmos2.ServingBenchmarks;

/// <summary><c>--name value</c> pairs after the subcommand.</summary>
internal sealed class BenchOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    public static BenchOptions Parse(IEnumerable<string> args)
    {
        var options = new BenchOptions();
        string? key = null;
        foreach (var arg in args)
        {
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                key = arg[2..];
                options._values[key] = "true";
            }
            else if (key is not null)
            {
                options._values[key] = arg;
                key = null;
            }
        }
        return options;
    }

    public int Int(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    public string String(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;
}

/// <summary>The figures of a run: printed as they are measured, and again as the final <c>name: value unit</c> lines.</summary>
internal sealed class Figures
{
    private readonly List<(string Name, double Value, string Unit)> _figures = [];

    public void Add(string name, double value, string unit)
    {
        _figures.Add((name, value, unit));
        Progress.Log($"  => {name} = {value:0.###} {unit}");
    }

    public void Print()
    {
        Console.WriteLine();
        foreach (var (name, value, unit) in _figures)
        {
            Console.WriteLine($"{name}: {value:0.###} {unit}");
        }
    }
}

/// <summary>Timestamped progress lines (the runs are long; silence looks like a hang).</summary>
internal static class Progress
{
    private static readonly Stopwatch Since = Stopwatch.StartNew();

    public static void Log(string message) => Console.WriteLine($"[{Since.Elapsed.TotalSeconds,7:F1} s] {message}");
}

internal static class Stats
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>The machine is shared: every figure is read next to the load it was measured under.</summary>
internal static class LoadAverage
{
    public static string Now() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    public static double OneMinute() => double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Starts the built services (in this benchmark's configuration first: it is normally built with <c>-c Release</c>).</summary>
internal static class Services
{
    /// <summary>
    /// Where every service's output goes, one file per service name (a restart appends), so a service that dies in a
    /// long run can be read afterwards: a folder of its own per benchmark run under the temp folder.
    /// </summary>
    public static string LogFolder { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"kosmos2-bench-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}")).FullName;

    /// <summary>Starts a built service on a free port, or on <paramref name="port"/> (a restart keeps its address).</summary>
    public static ServiceProcess Start(string name, string projectFolder, string assemblyName, Dictionary<string, string> environment, int? port = null)
    {
        var path = RepoPaths.BuiltAssembly(projectFolder, assemblyName);
        var log = Path.Combine(LogFolder, $"{name}.log");
        Progress.Log($"starting {name} ({Path.GetRelativePath(RepoPaths.RepoRoot, path)}, output to {log}) with {string.Join(", ", environment.Where(e => !e.Key.StartsWith("Redis", StringComparison.Ordinal)).Select(e => $"{e.Key}={e.Value}"))}");
        return ServiceProcess.Start(name, path, environment, port, new ProcessOptions { LogPath = log });
    }

    public static async Task WaitAsync(params ServiceProcess[] services)
    {
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(services.Select(s => s.WaitHealthyAsync(TimeSpan.FromMinutes(6))));
        Progress.Log($"{string.Join(", ", services.Select(s => s.Name))} SERVING after {watch.Elapsed.TotalSeconds:F0} s (load {LoadAverage.Now()})");
    }
}

/// <summary>Seeded random-pixel PNGs: a new image per seed, so each is a cache miss until sent twice.</summary>
internal static class RandomImages
{
    public static byte[] Png(int width, int height, int seed)
    {
        var random = new Random(seed);
        using var bitmap = new SkiaSharp.SKBitmap(width, height, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Opaque);
        var pixels = new byte[width * height * 4];
        random.NextBytes(pixels);
        for (var i = 3; i < pixels.Length; i += 4)
        {
            pixels[i] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var image = SkiaSharp.SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
