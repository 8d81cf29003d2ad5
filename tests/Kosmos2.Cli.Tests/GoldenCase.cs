using System.Text.Json;
using Kosmos2.Testing;

namespace Kosmos2.Cli.Tests;

/// <summary>A golden case's inputs as command-line arguments, and its expected outputs.</summary>
public sealed record GoldenCase(string Name, string Image, string Prompt, string? BboxesJson, int MaxNewTokens,
    int[] InputIds, int[] NewTokenIds, string CleanText, string EntitiesJson)
{
    public override string ToString() => Name;

    /// <summary>The case as a public Generate request: its image, prompt, regions and token budget.</summary>
    public Contracts.V1.GenerateRequest Request() => GoldenRequests.Request(Image, Prompt, BboxesJson, MaxNewTokens);

    public IEnumerable<string> GenerateArgs()
    {
        string[] args = ["generate", "--image", Image, "--prompt", Prompt, "--max-new-tokens", MaxNewTokens.ToString(), "--json"];
        return BboxesJson is null ? args : [.. args, "--bboxes", BboxesJson];
    }

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
                root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                generation.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                generation.GetProperty("clean_text").GetString()!,
                generation.GetProperty("entities").GetRawText()));
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

    /// <summary>Checks a <c>generate --json</c> object against this case.</summary>
    public void AssertMatches(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.Equal(InputIds, root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal(NewTokenIds, root.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal(CleanText, root.GetProperty("clean_text").GetString());
        using var expected = JsonDocument.Parse(EntitiesJson);
        var actual = root.GetProperty("entities").EnumerateArray().ToList();
        var wanted = expected.RootElement.EnumerateArray().ToList();
        Assert.Equal(wanted.Count, actual.Count);
        for (var i = 0; i < wanted.Count; i++)
        {
            Assert.Equal(wanted[i].GetProperty("phrase").GetString(), actual[i].GetProperty("phrase").GetString());
            Assert.Equal(
                wanted[i].GetProperty("span").EnumerateArray().Select(v => v.GetInt32()),
                actual[i].GetProperty("span").EnumerateArray().Select(v => v.GetInt32()));
            Assert.Equal(
                wanted[i].GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetDouble())),
                actual[i].GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetDouble())));
        }
    }
}
