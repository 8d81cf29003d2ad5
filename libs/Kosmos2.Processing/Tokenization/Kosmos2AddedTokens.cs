using System.Globalization;
using System.Text.Json;

namespace Kosmos2.Processing.Tokenization;

/// <summary>A token matched in raw text before sentencepiece runs (HF "added token").</summary>
public sealed record AddedToken(string Content, int Id, bool LStrip, bool RStrip, bool Special);

/// <summary>
/// The added tokens of a Kosmos-2 tokenizer with <c>n</c> sentencepiece pieces (SPEC §7.1): <c>&lt;s&gt; &lt;pad&gt;
/// &lt;/s&gt; &lt;unk&gt;</c> = 0..3, <c>&lt;mask&gt;</c> = n+1, the 11 Kosmos tags from n+2, then 1,024 patch-index
/// tokens. The layout is computed, then checked against the folder's JSON files so a different checkpoint fails
/// loudly instead of producing wrong ids; the JSON supplies the lstrip/rstrip/special flags.
/// </summary>
public static class Kosmos2AddedTokens
{
    public const int PatchIndexCount = 1024;

    /// <summary>The Kosmos tags in id order (the delimiter really has the leading and trailing slash).</summary>
    public static IReadOnlyList<string> KosmosTags { get; } =
    [
        "</doc>", "<image>", "</image>", "</chunk>", "</line>", "<phrase>", "</phrase>", "<object>", "</object>",
        "</delimiter_of_multi_objects/>", "<grounding>",
    ];

    public static string PatchIndexToken(int n) => $"<patch_index_{n.ToString("D4", CultureInfo.InvariantCulture)}>";

    /// <summary>The computed layout, flags as the published checkpoint has them.</summary>
    public static List<AddedToken> Compute(int pieceCount)
    {
        var tokens = new List<AddedToken>(4 + 1 + KosmosTags.Count + PatchIndexCount)
        {
            new("<s>", Kosmos2Tokenizer.BosId, false, false, true),
            new("<pad>", Kosmos2Tokenizer.PadId, false, false, true),
            new("</s>", Kosmos2Tokenizer.EosId, false, false, true),
            new("<unk>", Kosmos2Tokenizer.UnkId, false, false, true),
            new("<mask>", pieceCount + 1, true, false, true),
        };
        var id = pieceCount + 2;
        foreach (var tag in KosmosTags)
        {
            tokens.Add(new AddedToken(tag, id++, true, false, false));
        }
        for (var n = 0; n < PatchIndexCount; n++)
        {
            tokens.Add(new AddedToken(PatchIndexToken(n), id++, true, false, false));
        }
        return tokens;
    }

    /// <summary>Computes the layout and reconciles it with the folder's tokenizer JSON files that exist.</summary>
    public static List<AddedToken> Load(string directory, int pieceCount)
    {
        var tokens = Compute(pieceCount);
        var byId = tokens.ToDictionary(t => t.Id);

        var configPath = Path.Combine(directory, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            using var config = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (config.RootElement.TryGetProperty("added_tokens_decoder", out var decoder))
            {
                foreach (var entry in decoder.EnumerateObject())
                {
                    var id = int.Parse(entry.Name, CultureInfo.InvariantCulture);
                    var content = entry.Value.GetProperty("content").GetString();
                    if (!byId.TryGetValue(id, out var expected) || expected.Content != content)
                    {
                        throw Mismatch(configPath, $"id {id} is '{content}'", expected);
                    }
                    byId[id] = expected with
                    {
                        LStrip = Flag(entry.Value, "lstrip", expected.LStrip),
                        RStrip = Flag(entry.Value, "rstrip", expected.RStrip),
                        Special = Flag(entry.Value, "special", expected.Special),
                    };
                }
            }
        }

        var addedPath = Path.Combine(directory, "added_tokens.json");
        if (File.Exists(addedPath))
        {
            using var added = JsonDocument.Parse(File.ReadAllBytes(addedPath));
            var byContent = byId.Values.ToDictionary(t => t.Content, StringComparer.Ordinal);
            foreach (var entry in added.RootElement.EnumerateObject())
            {
                var id = entry.Value.GetInt32();
                if (!byContent.TryGetValue(entry.Name, out var expected) || expected.Id != id)
                {
                    throw Mismatch(addedPath, $"'{entry.Name}' is id {id}", expected);
                }
            }
        }

        var mapPath = Path.Combine(directory, "special_tokens_map.json");
        if (File.Exists(mapPath))
        {
            using var map = JsonDocument.Parse(File.ReadAllBytes(mapPath));
            CheckSpecial(map.RootElement, mapPath, "bos_token", "<s>");
            CheckSpecial(map.RootElement, mapPath, "pad_token", "<pad>");
            CheckSpecial(map.RootElement, mapPath, "eos_token", "</s>");
            CheckSpecial(map.RootElement, mapPath, "unk_token", "<unk>");
            CheckSpecial(map.RootElement, mapPath, "mask_token", "<mask>");
        }

        return [.. byId.Values.OrderBy(t => t.Id)];
    }

    private static bool Flag(JsonElement entry, string name, bool fallback) =>
        entry.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : fallback;

    private static void CheckSpecial(JsonElement root, string path, string name, string expected)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            return;
        }
        var content = value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetProperty("content").GetString();
        if (content != expected)
        {
            throw new InvalidDataException($"{path}: {name} is '{content}', the Kosmos-2 layout expects '{expected}'.");
        }
    }

    private static InvalidDataException Mismatch(string path, string found, AddedToken? expected) =>
        new($"{path}: {found}, but the Kosmos-2 layout computed from the sentencepiece model has " +
            (expected is null ? "no such token" : $"'{expected.Content}' = {expected.Id}") + ".");
}
