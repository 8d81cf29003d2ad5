using System.Collections.Concurrent;
using System.Text.Json;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>
/// Finds the tokenizer golden files (every <c>tokenizer_cases*.json</c> in the golden dir and in
/// <c>tokenizer_unigram/</c>) and the tokenizer folder each belongs to; caches parsed files and tokenizers.
/// </summary>
internal static class TokenizerGoldenData
{
    private static readonly ConcurrentDictionary<string, JsonDocument> Files = new();
    private static readonly ConcurrentDictionary<string, Kosmos2Tokenizer> Tokenizers = new();

    /// <summary>Case files as paths relative to the golden dir, e.g. <c>tokenizer_unigram/tokenizer_cases.json</c>.</summary>
    public static IReadOnlyList<string> CaseFiles()
    {
        var golden = RepoPaths.GoldenDir;
        var files = Directory.GetFiles(golden, "tokenizer_cases*.json").ToList();
        var unigram = Path.Combine(golden, "tokenizer_unigram");
        if (Directory.Exists(unigram))
        {
            files.AddRange(Directory.GetFiles(unigram, "tokenizer_cases*.json"));
        }
        return [.. files.Select(f => Path.GetRelativePath(golden, f).Replace('\\', '/')).Order(StringComparer.Ordinal)];
    }

    public static JsonElement Root(string caseFile) =>
        Files.GetOrAdd(caseFile, f => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RepoPaths.GoldenDir, f)))).RootElement;

    /// <summary>The folder with the case file's sentencepiece model: its own folder when it has one, else <c>golden/model</c>.</summary>
    public static string TokenizerDir(string caseFile)
    {
        var dir = Path.GetDirectoryName(Path.Combine(RepoPaths.GoldenDir, caseFile))!;
        return File.Exists(Path.Combine(dir, Kosmos2Tokenizer.ModelFileName)) ? dir : RepoPaths.GoldenModelDir;
    }

    public static Kosmos2Tokenizer Tokenizer(string dir) => Tokenizers.GetOrAdd(Path.GetFullPath(dir), Kosmos2Tokenizer.Load);

    public static Kosmos2Tokenizer TokenizerFor(string caseFile) => Tokenizer(TokenizerDir(caseFile));

    /// <summary>(file, index, label) rows for every element of <paramref name="arrayName"/> in every case file.</summary>
    public static TheoryData<string, int, string> Rows(string arrayName)
    {
        var data = new TheoryData<string, int, string>();
        foreach (var file in CaseFiles())
        {
            if (!Root(file).TryGetProperty(arrayName, out var array))
            {
                continue;
            }
            var index = 0;
            foreach (var item in array.EnumerateArray())
            {
                var text = item.TryGetProperty("text", out var t) ? t.GetString() : item.GetProperty("prompt").GetString();
                var special = item.TryGetProperty("add_special_tokens", out var s) && s.GetBoolean() ? " +special" : string.Empty;
                data.Add(file, index++, JsonSerializer.Serialize(text) + special);
            }
        }
        return data;
    }

    public static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    public static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];
}
