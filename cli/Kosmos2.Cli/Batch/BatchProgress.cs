using System.Diagnostics;

namespace Kosmos2.Cli.Batch;

/// <summary>
/// The progress of a run: images/s, tokens/s, ETA, failures and the image-cache hit rate. On a terminal a bar redrawn
/// in place; otherwise (a log, a pipe) a plain line every few seconds, so logs stay readable.
/// </summary>
internal sealed class BatchProgress : IDisposable
{
    private readonly TextWriter _writer;
    private readonly bool _terminal;
    private readonly int _total;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Timer _timer;
    private readonly object _lock = new();
    private int _done;
    private int _failed;
    private long _tokens;
    private int _cacheHits;
    private int _lastLength;

    /// <param name="total">Items this run sends (skipped ones excluded).</param>
    public BatchProgress(TextWriter writer, bool terminal, int total)
    {
        _writer = writer;
        _terminal = terminal;
        _total = total;
        var period = terminal ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(5);
        _timer = new Timer(_ => Render(final: false), null, period, period);
    }

    /// <summary>The current concurrency limit, shown when set.</summary>
    public Func<int>? Concurrency { get; set; }

    public int Failed => Volatile.Read(ref _failed);

    public int Done => Volatile.Read(ref _done);

    public TimeSpan Elapsed => _clock.Elapsed;

    public void Add(BatchOutcome outcome)
    {
        lock (_lock)
        {
            _done++;
            if (outcome.Report is { } report)
            {
                _tokens += report.NewTokenIds.Count;
                if (report.Timings.TryGetValue("image_cache_hit", out var hit) && hit is true)
                {
                    _cacheHits++;
                }
            }
            else
            {
                _failed++;
            }
        }
    }

    /// <summary>The line as it stands now.</summary>
    public string Line()
    {
        lock (_lock)
        {
            var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 1e-3);
            var rate = _done / seconds;
            var eta = rate > 0 ? TimeSpan.FromSeconds((_total - _done) / rate) : (TimeSpan?)null;
            var succeeded = _done - _failed;
            var hitRate = succeeded > 0 ? 100.0 * _cacheHits / succeeded : 0;
            var concurrency = Concurrency is { } limit ? $", {limit()} in flight max" : "";
            var bar = _terminal ? Bar(_total > 0 ? (double)_done / _total : 1) + " " : "";
            return $"{bar}{_done}/{_total} images, {rate:0.00} images/s, {_tokens / seconds:0.0} tokens/s, "
                + $"ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss") : "--:--:--")}, {_failed} failed, cache hits {hitRate:0}%{concurrency}";
        }
    }

    /// <summary>Prints the final line (and ends the bar's line on a terminal).</summary>
    public void Finish()
    {
        _timer.Dispose();
        Render(final: true);
    }

    public void Dispose() => _timer.Dispose();

    private void Render(bool final)
    {
        var line = Line();
        lock (_lock)
        {
            if (_terminal)
            {
                // Pad over the longer line before it; the final one ends the line.
                _writer.Write("\r" + line.PadRight(_lastLength) + (final ? "\n" : ""));
                _lastLength = line.Length;
            }
            else
            {
                _writer.WriteLine(line);
            }
            _writer.Flush();
        }
    }

    private static string Bar(double fraction)
    {
        const int width = 24;
        var filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * width);
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}
