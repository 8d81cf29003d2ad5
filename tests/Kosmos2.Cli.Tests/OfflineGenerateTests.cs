using System.Text.Json;
using Kosmos2.Testing;
using SkiaSharp;

namespace Kosmos2.Cli.Tests;

/// <summary><c>kosmos2 generate --model-dir</c> run as a user would: the reference's tokens and entities, and boxes drawn where they belong.</summary>
public sealed class OfflineGenerateTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in GoldenCase.AllInEveryBoxForm())
        {
            data.Add(c.Name);
        }
        return data;
    }

    [Fact]
    [Trait("Category", "Golden")]
    public void Golden_cases_are_present() => Assert.NotEmpty(GoldenCase.All());

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Cases))]
    public async Task Generate_json_reproduces_the_golden_case(string name)
    {
        var golden = GoldenCase.AllInEveryBoxForm().Single(c => c.Name == name);

        var (exit, stdout, stderr) = await CliProcess.RunAsync([.. golden.GenerateArgs(), "--model-dir", RepoPaths.GoldenModelDir]);

        Assert.True(exit == 0, stderr);
        golden.AssertMatches(stdout);
    }

    /// <summary>
    /// A referring prompt of our own (any golden tokenizer has these tags) puts one entity on the picture; on a grey
    /// image the outline sits on the entity's pixel box, the inside stays grey, and the label above the box holds text
    /// pixels in the text colour (white), which needs a font that exists on any machine.
    /// </summary>
    [Fact]
    public async Task The_drawn_png_has_the_box_outline_at_the_entity_pixels_and_a_legible_label()
    {
        const string Prompt = "<grounding><phrase>It</phrase> is";
        const string Bboxes = "[[0.2, 0.3, 0.8, 0.9]]";
        var grey = new SKColor(128, 128, 128);
        var input = Path.Combine(Path.GetTempPath(), $"kosmos2-grey-{Guid.NewGuid():N}.png");
        var output = Path.ChangeExtension(input, ".boxes.png");
        var rgb = new byte[320 * 240 * 3];
        Array.Fill(rgb, (byte)128);
        await File.WriteAllBytesAsync(input, TestImages.Png(320, 240, rgb));
        try
        {
            string[] args = ["generate", "--image", input, "--prompt", Prompt, "--bboxes", Bboxes, "--max-new-tokens", "2", "--json", "--out", output, "--model-dir", RepoPaths.GoldenModelDir];
            var (exit, stdout, stderr) = await CliProcess.RunAsync(args);
            Assert.True(exit == 0, stderr);

            using var json = JsonDocument.Parse(stdout);
            var entity = json.RootElement.GetProperty("entities")[0];
            Assert.Equal("It", entity.GetProperty("phrase").GetString());
            var box = entity.GetProperty("boxes_px")[0].EnumerateArray().Select(v => v.GetDouble()).ToArray();
            using var drawn = SKBitmap.Decode(output);
            Assert.Equal(320, drawn.Width);
            var outline = new SKColor(230, 25, 75);
            var (left, top, right, bottom) = ((int)Math.Ceiling(box[0]), (int)Math.Ceiling(box[1]), (int)Math.Floor(box[2]) - 1, (int)Math.Floor(box[3]) - 1);
            var midX = (left + right) / 2;
            var midY = (top + bottom) / 2;
            Assert.Equal(outline, drawn.GetPixel(left, midY));
            Assert.Equal(outline, drawn.GetPixel(right, midY));
            Assert.Equal(outline, drawn.GetPixel(midX, bottom));
            Assert.Equal(grey, drawn.GetPixel(midX, midY));
            Assert.Equal(grey, drawn.GetPixel(Math.Max(0, left - 4), midY));
            Assert.Equal(grey, drawn.GetPixel(Math.Min(319, right + 4), midY));

            // The label: a band of the outline colour just above the box, with white glyph pixels inside it.
            var band = Enumerable.Range(Math.Max(0, top - 20), 20).SelectMany(y => Enumerable.Range(left, 40).Select(x => drawn.GetPixel(x, y))).ToList();
            var labelFill = band.Count(p => p == outline);
            var text = band.Count(p => p == SKColors.White);
            Assert.True(labelFill > 40, $"no label box above the entity ({labelFill} pixels of its colour)");
            Assert.True(text >= 15, $"the label holds {text} white text pixels: its glyphs were not drawn");
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    [Fact]
    public async Task Mistakes_in_the_command_exit_2_with_a_message()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(["generate", "--image", "/nonexistent.png", "--prompt", "x", "--model-dir", RepoPaths.GoldenModelDir]);
        Assert.Equal(2, exit);
        Assert.Contains("does not exist", stderr);
    }
}
