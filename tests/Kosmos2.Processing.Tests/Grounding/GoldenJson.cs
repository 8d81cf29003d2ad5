using System.Text.Json;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Tests;

/// <summary>Finds and reads golden files; every list is discovered from the directory, so new cases need no code.</summary>
internal static class GoldenJson
{
    public static JsonElement Load(string relativePath)
    {
        var path = Path.Combine(RepoPaths.GoldenDir, relativePath);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    /// <summary>Names of <c>cases/*/case.json</c> folders; throws when there are none so the tests fail rather than pass empty.</summary>
    public static IReadOnlyList<string> CaseNames()
    {
        var dir = Path.Combine(RepoPaths.GoldenDir, "cases");
        var names = Directory.Exists(dir)
            ? Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, "case.json"))).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];
        if (names.Count == 0)
        {
            throw new InvalidOperationException($"no golden cases/*/case.json under {RepoPaths.GoldenDir}");
        }
        return names;
    }

    public static JsonElement Case(string name) => Load(Path.Combine("cases", name, "case.json"));

    public static TheoryData<string> CaseData()
    {
        var data = new TheoryData<string>();
        foreach (var n in CaseNames())
        {
            data.Add(n);
        }
        return data;
    }

    /// <summary>Indices into a JSON array of the golden file, failing when it is missing or empty.</summary>
    public static TheoryData<int> IndexData(string file, params string[] path)
    {
        var e = Load(file);
        foreach (var p in path)
        {
            e = e.GetProperty(p);
        }
        var n = e.GetArrayLength();
        if (n == 0)
        {
            throw new InvalidOperationException($"{file}:{string.Join('.', path)} is empty");
        }
        var data = new TheoryData<int>();
        for (var i = 0; i < n; i++)
        {
            data.Add(i);
        }
        return data;
    }

    public static NormalizedBox Box(JsonElement e) =>
        new(e[0].GetDouble(), e[1].GetDouble(), e[2].GetDouble(), e[3].GetDouble());

    /// <summary>Asserts entities equal the golden <c>[{phrase, span, boxes}]</c> list exactly.</summary>
    public static void AssertEntities(JsonElement expected, IReadOnlyList<GroundedEntity> actual)
    {
        Assert.Equal(expected.GetArrayLength(), actual.Count);
        for (var i = 0; i < actual.Count; i++)
        {
            var e = expected[i];
            var a = actual[i];
            Assert.Equal(e.GetProperty("phrase").GetString(), a.Phrase);
            Assert.Equal(e.GetProperty("span")[0].GetInt32(), a.SpanStart);
            Assert.Equal(e.GetProperty("span")[1].GetInt32(), a.SpanEnd);
            var boxes = e.GetProperty("boxes").EnumerateArray().Select(Box).ToList();
            Assert.Equal(boxes, a.Boxes);
            Assert.Equal(a.Boxes.Count, a.PatchBoxes.Count);
        }
    }

    public static void AssertSameEntities(IReadOnlyList<GroundedEntity> expected, IReadOnlyList<GroundedEntity> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Phrase, actual[i].Phrase);
            Assert.Equal(expected[i].SpanStart, actual[i].SpanStart);
            Assert.Equal(expected[i].SpanEnd, actual[i].SpanEnd);
            Assert.Equal(expected[i].PatchBoxes, actual[i].PatchBoxes);
            Assert.Equal(expected[i].Boxes, actual[i].Boxes);
        }
    }
}
