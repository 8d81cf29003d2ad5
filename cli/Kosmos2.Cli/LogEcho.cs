using System.Text.Json;

namespace Kosmos2.Cli;

/// <summary>
/// Which lines of the processes of <c>kosmos2 up</c> reach the terminal (all go to their log files): our own services'
/// information and warnings (load progress) and anyone's errors, with the service name in front.
/// </summary>
internal static class LogEcho
{
    /// <summary>A line handler for <paramref name="name"/>'s output.</summary>
    public static Action<string> For(string name) => line =>
    {
        if (Describe(line) is { } shown)
        {
            Console.Error.WriteLine($"  [{name}] {shown}");
        }
    };

    /// <summary>The message of a JSON console log line worth showing, or null.</summary>
    private static string? Describe(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var level = root.TryGetProperty("LogLevel", out var l) ? l.GetString() : null;
            var category = root.TryGetProperty("Category", out var c) ? c.GetString() ?? "" : "";
            var message = root.TryGetProperty("Message", out var m) ? m.GetString() : null;
            var ours = category.StartsWith("Kosmos2.", StringComparison.Ordinal);
            return level is "Error" or "Critical" || (ours && level is "Information" or "Warning") ? message : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
