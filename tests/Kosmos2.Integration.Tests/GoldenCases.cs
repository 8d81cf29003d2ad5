using System.Text.Json;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;

namespace Kosmos2.Integration.Tests;

/// <summary>A golden case as a user would send it: image file, prompt, boxes; and the reference's outputs.</summary>
public sealed record GoldenCase(string Name, string ImagePath, string Prompt, string? BboxesJson, int MaxNewTokens,
    int[] NewTokenIds, string CleanText, List<(string Phrase, int Start, int End, double[][] Boxes)> Entities)
{
    public override string ToString() => Name;

    /// <summary>The case as a public Generate request: its image, prompt, regions and token budget.</summary>
    public GenerateRequest Request() => GoldenRequests.Request(ImagePath, Prompt, BboxesJson, MaxNewTokens);

    /// <summary>Every <c>cases/*/case.json</c> under the golden folder.</summary>
    public static IReadOnlyList<GoldenCase> All()
    {
        var cases = new List<GoldenCase>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "cases"), "case.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var root = json.RootElement;
            var generation = root.GetProperty("generation");
            var bboxes = root.GetProperty("bboxes");
            cases.Add(new GoldenCase(
                root.GetProperty("name").GetString()!,
                Path.Combine(RepoPaths.GoldenDir, root.GetProperty("image").GetString()!),
                root.GetProperty("prompt").GetString()!,
                bboxes.ValueKind == JsonValueKind.Null ? null : bboxes.GetRawText(),
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

    /// <summary>
    /// Every case, then each case again with its boxes in every other form that gives the reference the same prompt
    /// (<see cref="GoldenBoxForms"/>), expecting the same outputs.
    /// </summary>
    public static IReadOnlyList<GoldenCase> AllInEveryBoxForm() =>
        [.. All().SelectMany(c => GoldenBoxForms.Equivalents(c.Prompt, c.BboxesJson)
            .Select(f => c with { Name = $"{c.Name} ({f.Form})", BboxesJson = f.BboxesJson })
            .Prepend(c))];
}
