using System.Text.Json;
using System.Text.RegularExpressions;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Processing.Tests.Tokenization;

/// <summary>What the golden tokenizer folders and the manifest say of the tokenizer layout, read as data.</summary>
internal static partial class GoldenTokenizerFiles
{
    /// <summary>
    /// Token → id from the folder's <c>tokenizer_config.json</c> (<c>added_tokens_decoder</c>) and <c>added_tokens.json</c>,
    /// which Hugging Face wrote; an id the two files give differently fails.
    /// </summary>
    public static Dictionary<string, int> AddedTokenIds(string dir)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        void Add(string token, int id)
        {
            if (ids.TryGetValue(token, out var known) && known != id)
            {
                throw new InvalidDataException($"{dir}: {token} is {known} in one file and {id} in another.");
            }
            ids[token] = id;
        }

        var config = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(config))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(config));
            if (doc.RootElement.TryGetProperty("added_tokens_decoder", out var decoder))
            {
                foreach (var entry in decoder.EnumerateObject())
                {
                    Add(entry.Value.GetProperty("content").GetString()!, int.Parse(entry.Name, System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        }
        var added = Path.Combine(dir, "added_tokens.json");
        if (File.Exists(added))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(added));
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                Add(entry.Name, entry.Value.GetInt32());
            }
        }
        return ids;
    }

    /// <summary>The sentencepiece model type and piece count the manifest states for a tokenizer folder, or null.</summary>
    public static (SentencePieceModelType ModelType, int? Pieces)? ManifestFacts(string folder)
    {
        var path = Path.Combine(RepoPaths.GoldenDir, "manifest.json");
        if (!File.Exists(path))
        {
            return null;
        }
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var section = folder == "model" ? root : root.TryGetProperty(folder, out var s) ? s : default;
        if (section.ValueKind != JsonValueKind.Object
            || !section.TryGetProperty("spm_train_command", out var command)
            || ModelTypeFlag().Match(command.GetString() ?? "") is not { Success: true } match)
        {
            return null;
        }
        var type = match.Groups[1].Value == "unigram" ? SentencePieceModelType.Unigram : SentencePieceModelType.Bpe;
        var ids = folder == "model"
            ? (root.TryGetProperty("tokenizer", out var t) ? t : default)
            : (section.TryGetProperty("ids", out var i) ? i : default);
        int? pieces = ids.ValueKind == JsonValueKind.Object && ids.TryGetProperty("sentencepiece_pieces", out var p) ? p.GetInt32() : null;
        return (type, pieces);
    }

    [GeneratedRegex(@"--model_type=(\w+)")]
    private static partial Regex ModelTypeFlag();
}
