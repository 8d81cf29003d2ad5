namespace Kosmos2.Cli;

/// <summary>Reading JSONL input files (batch manifests, Flickr30k-style datasets): blank lines are skipped.</summary>
internal static class JsonLines
{
    /// <summary>The non-blank lines of <paramref name="path"/> with their 1-based line numbers, for messages.</summary>
    public static IEnumerable<(int Number, string Text)> Read(string path) =>
        File.ReadLines(path).Select((text, i) => (i + 1, text)).Where(line => !string.IsNullOrWhiteSpace(line.text));
}
