using System.Text.Json;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>A golden case as a user would send it: image file, prompt, boxes; and the reference's outputs.</summary>
public sealed record GoldenCase(string Name, string ImagePath, string Prompt, List<double[]?> Boxes, int MaxNewTokens,
    int[] NewTokenIds, string CleanText, List<(string Phrase, int Start, int End, double[][] Boxes)> Entities)
{
    public override string ToString() => Name;

    /// <summary>Every <c>cases/*/case.json</c> under the golden folder.</summary>
    public static IReadOnlyList<GoldenCase> All()
    {
        var cases = new List<GoldenCase>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "cases"), "case.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var root = json.RootElement;
            var generation = root.GetProperty("generation");
            var boxes = new List<double[]?>();
            if (root.GetProperty("bboxes").ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in root.GetProperty("bboxes").EnumerateArray())
                {
                    boxes.Add(entry.ValueKind == JsonValueKind.Null ? null : entry.EnumerateArray().Select(v => v.GetDouble()).ToArray());
                }
            }
            cases.Add(new GoldenCase(
                root.GetProperty("name").GetString()!,
                Path.Combine(RepoPaths.GoldenDir, root.GetProperty("image").GetString()!),
                root.GetProperty("prompt").GetString()!,
                boxes,
                generation.GetProperty("max_new_tokens").GetInt32(),
                generation.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                generation.GetProperty("clean_text").GetString()!,
                generation.GetProperty("entities").EnumerateArray().Select(e => (
                    e.GetProperty("phrase").GetString()!,
                    e.GetProperty("span")[0].GetInt32(),
                    e.GetProperty("span")[1].GetInt32(),
                    e.GetProperty("boxes").EnumerateArray().Select(b => b.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray())).ToList()));
        }
        return cases;
    }
}
