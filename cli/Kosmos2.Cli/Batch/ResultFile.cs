using System.Text;
using System.Text.Json;

namespace Kosmos2.Cli.Batch;

/// <summary>
/// The batch's JSONL output, append-only: one whole line per outcome, flushed as it is written, so a run killed at any
/// moment leaves every finished line intact and at most one partial last line. Opening an existing file reads which
/// ids it already holds (a rerun skips them) and cuts off that partial line.
/// </summary>
internal sealed class ResultFile : IDisposable
{
    private readonly FileStream _stream;
    private readonly object _lock = new();

    private ResultFile(FileStream stream, Dictionary<string, bool> existing)
    {
        _stream = stream;
        Existing = existing;
    }

    /// <summary>Ids already in the file, and whether their last line succeeded.</summary>
    public IReadOnlyDictionary<string, bool> Existing { get; }

    /// <summary>Bytes the open cut off: the partial last line a killed run left (0 when none).</summary>
    public int TruncatedBytes { get; private init; }

    public static ResultFile Open(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var existing = new Dictionary<string, bool>(StringComparer.Ordinal);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        var end = Array.LastIndexOf(bytes, (byte)'\n') + 1;
        var lineNumber = 0;
        foreach (var line in Encoding.UTF8.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            lineNumber++;
            try
            {
                using var json = JsonDocument.Parse(line);
                var id = json.RootElement.GetProperty("id").GetString()!;
                existing[id] = json.RootElement.GetProperty("status").GetString() == BatchOutcome.Ok;
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                stream.Dispose();
                throw new UsageException($"{path} line {lineNumber} is not a kosmos2 batch result (no \"id\" and \"status\"): give another --output, or remove the file.");
            }
        }
        // A partial last line is what a killed run was writing: drop it, so the next line starts on its own.
        stream.SetLength(end);
        stream.Seek(end, SeekOrigin.Begin);
        return new ResultFile(stream, existing) { TruncatedBytes = bytes.Length - end };
    }

    /// <summary>Appends one outcome as one line and flushes it to the operating system.</summary>
    public void Write(BatchOutcome outcome)
    {
        var line = Encoding.UTF8.GetBytes(LineOf(outcome) + "\n");
        lock (_lock)
        {
            _stream.Write(line);
            _stream.Flush();
        }
    }

    /// <summary>
    /// The line: <c>id</c>, <c>image</c>, <c>task</c>, <c>status</c>, then the <c>--json</c> object's fields
    /// (<see cref="GenerationReport"/>), or <c>error</c> when it failed.
    /// </summary>
    public static string LineOf(BatchOutcome outcome)
    {
        void Head(Utf8JsonWriter json)
        {
            json.WriteString("id", outcome.Item.Id);
            json.WriteString("image", outcome.Item.ImagePath);
            json.WriteString("task", outcome.Item.Task);
            json.WriteString("status", outcome.Status);
        }
        if (outcome.Report is { } report)
        {
            return report.ToJson(Head);
        }
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, GenerationReport.JsonOptions))
        {
            json.WriteStartObject();
            Head(json);
            json.WriteString("error", outcome.Error);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public void Dispose() => _stream.Dispose();
}
