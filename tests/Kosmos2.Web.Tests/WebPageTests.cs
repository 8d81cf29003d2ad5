using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Deque.AxeCore.Playwright;
using Kosmos2.Cli.Tests;
using Kosmos2.Processing.Grounding;
using Kosmos2.Testing;
using Microsoft.Playwright;

namespace Kosmos2.Web.Tests;

/// <summary>
/// The page served by <c>kosmos2 up</c>, driven in headless Chromium as a person uses it, checked against the golden
/// cases (the reference's outputs on the golden checkpoint). Every test leaves a screenshot in
/// <see cref="WebCluster.ArtifactsDir"/>.
/// </summary>
public sealed class WebPageTests(WebCluster cluster) : IClassFixture<WebCluster>
{
    private const string BriefCaptionPrompt = "<grounding>An image of";
    private const string ReferPrompt = "<grounding><phrase>It</phrase> is";
    private static readonly JsonSerializerOptions WebJson = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task A_golden_image_captioned_on_the_page_shows_the_golden_text_and_one_box_per_entity_at_the_golden_pixels()
    {
        var cases = GoldenCase.All().Where(c => c.Prompt == BriefCaptionPrompt && c.BboxesJson is null).ToList();
        Assert.NotEmpty(cases);
        var page = await cluster.OpenPageAsync();
        await page.FillAsync("#api-key", WebCluster.ApiKey);
        foreach (var golden in cases)
        {
            await page.SetInputFilesAsync("#image", golden.Image);
            await WaitForImageAsync(page);
            await page.SelectOptionAsync("#task", "brief");
            await page.FillAsync("#max-tokens", golden.MaxNewTokens.ToString(CultureInfo.InvariantCulture));

            await RunAsync(page);

            Assert.Equal(golden.CleanText, await page.TextContentAsync("#text-out"));
            await AssertBoxesAsync(page, golden);
            Assert.Matches("queue .* ms .*total .* ms", await page.TextContentAsync("#timings"));
            await ScreenshotAsync(page, $"caption-{golden.Name}");
        }
        // The API key stays in the tab's session storage, not in local storage.
        Assert.Equal(WebCluster.ApiKey, await page.EvaluateAsync<string>("sessionStorage.getItem('kosmos2.apiKey')"));
        Assert.Null(await page.EvaluateAsync<string?>("localStorage.getItem('kosmos2.apiKey')"));
    }

    [Fact]
    public async Task A_region_drawn_with_the_mouse_is_sent_and_quantised_as_the_reference_does()
    {
        // The golden referring case when this family has one: drawing from the centre of its top-left cell to the centre
        // of its bottom-right cell gives the reference's patch tokens, so the page must show the golden answer.
        var golden = GoldenCase.All().FirstOrDefault(c => c.Prompt == ReferPrompt && GoldenCells(c) is not null);
        var image = golden?.Image ?? GoldenCase.All()[0].Image;
        var (width, height) = TestImages.PngSize(await File.ReadAllBytesAsync(image));
        var cells = golden is null ? (Ul: (3 * 32) + 4, Lr: (20 * 32) + 25) : GoldenCells(golden)!.Value;
        var page = await cluster.OpenPageAsync();
        await page.FillAsync("#api-key", WebCluster.ApiKey);
        await page.SetInputFilesAsync("#image", image);
        await WaitForImageAsync(page);
        await page.SelectOptionAsync("#task", "refer");
        await page.FillAsync("#max-tokens", (golden?.MaxNewTokens ?? 8).ToString(CultureInfo.InvariantCulture));

        var shown = (await page.Locator("#overlay").BoundingBoxAsync())!;
        var from = CellCentre(cells.Ul, shown);
        var to = CellCentre(cells.Lr, shown);
        await page.Mouse.MoveAsync(from.X, from.Y);
        await page.Mouse.DownAsync();
        await page.Mouse.MoveAsync(to.X, to.Y, new MouseMoveOptions { Steps = 5 });
        await page.Mouse.UpAsync();
        Assert.Equal(1, await page.Locator("#overlay rect.region").CountAsync());

        var request = await page.RunAndWaitForRequestAsync(() => RunAsync(page), r => r.Url.EndsWith("/v1/generate", StringComparison.Ordinal));

        // The request carries the drawn box, in the image's pixels (within one screen pixel and the page's 0.1 rounding).
        using var body = JsonDocument.Parse(request.PostData!);
        Assert.Equal("TASK_KIND_REFERRING_EXPRESSION_GENERATION", body.RootElement.GetProperty("task").GetString());
        var region = body.RootElement.GetProperty("regions")[0];
        Assert.Equal("BOX_FRAME_PIXELS", region.GetProperty("frame").GetString());
        var box = region.GetProperty("boxes")[0];
        double Sent(string name) => box.GetProperty(name).GetDouble();
        var tolerance = (width / shown.Width) + 0.1;
        Assert.InRange(Sent("x1"), ((from.X - shown.X) * width / shown.Width) - tolerance, ((from.X - shown.X) * width / shown.Width) + tolerance);
        Assert.InRange(Sent("y1"), ((from.Y - shown.Y) * height / shown.Height) - tolerance, ((from.Y - shown.Y) * height / shown.Height) + tolerance);
        Assert.InRange(Sent("x2"), ((to.X - shown.X) * width / shown.Width) - tolerance, ((to.X - shown.X) * width / shown.Width) + tolerance);
        Assert.InRange(Sent("y2"), ((to.Y - shown.Y) * height / shown.Height) - tolerance, ((to.Y - shown.Y) * height / shown.Height) + tolerance);

        // The model's prompt holds the reference's quantisation of that box.
        var quantised = PatchIndexCodec.Encode(new NormalizedBox(Sent("x1") / width, Sent("y1") / height, Sent("x2") / width, Sent("y2") / height));
        Assert.Equal(cells, quantised);
        var result = FinalResult(await (await request.ResponseAsync())!.TextAsync());
        Assert.Contains($"It</phrase><object>{Patch(cells.Ul)}{Patch(cells.Lr)}</object>", result.GetProperty("rawText").GetString());
        if (golden is not null)
        {
            Assert.Equal(golden.CleanText, await page.TextContentAsync("#text-out"));
            await AssertBoxesAsync(page, golden);
        }
        await ScreenshotAsync(page, "refer");
    }

    [Fact]
    public async Task Two_chat_turns_each_stream_an_answer_and_the_second_carries_its_drawn_box()
    {
        var image = GoldenCase.All()[0].Image;
        var page = await cluster.OpenPageAsync();
        await page.FillAsync("#api-key", WebCluster.ApiKey);
        await page.SetInputFilesAsync("#image", image);
        await WaitForImageAsync(page);
        await page.SelectOptionAsync("#task", "chat");
        await page.FillAsync("#max-tokens", "6");

        await page.FillAsync("#text", "What is in the picture?");
        var created = await page.RunAndWaitForResponseAsync(() => RunAsync(page), r => r.Url.EndsWith("/v1/sessions", StringComparison.Ordinal));
        var sessionId = JsonDocument.Parse(await created.TextAsync()).RootElement.GetProperty("id").GetString()!;

        await page.FillAsync("#text", "What is this?");
        await page.FillAsync("#region", "10,20,150,120"); // typed instead of drawn: the keyboard path
        await page.DispatchEventAsync("#region", "change");
        var turn = await page.RunAndWaitForRequestAsync(() => RunAsync(page), r => r.Url.EndsWith("/turns", StringComparison.Ordinal));
        var sentBox = JsonDocument.Parse(turn.PostData!).RootElement.GetProperty("regions")[0].GetProperty("boxes")[0];
        Assert.Equal(new[] { 10.0, 20, 150, 120 }, new[] { "x1", "y1", "x2", "y2" }.Select(n => sentBox.GetProperty(n).GetDouble()));

        Assert.Equal(2, await page.Locator("#chat > li").CountAsync());
        Assert.Equal(2, await page.Locator("#chat > li .answer").CountAsync());
        using var http = new HttpClient { BaseAddress = cluster.PageUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", WebCluster.ApiKey);
        var session = JsonDocument.Parse(await http.GetStringAsync($"/v1/sessions/{sessionId}")).RootElement;
        var turns = session.GetProperty("turns");
        Assert.Equal(2, turns.GetArrayLength());
        // The page shows each turn's answer as the API streamed it.
        var streamed = FinalResult(await (await turn.ResponseAsync())!.TextAsync());
        Assert.Equal(streamed.TryGetProperty("text", out var text) ? text.GetString() : "", await page.Locator("#chat > li .answer").Nth(1).TextContentAsync());
        Assert.Equal(1, streamed.GetProperty("turnIndex").GetInt32());
        Assert.Equal(1, turns[1].GetProperty("regions").GetArrayLength());
        await ScreenshotAsync(page, "chat");
    }

    [Fact]
    public async Task A_wrong_api_key_shows_the_refusal_not_a_blank_page()
    {
        var page = await cluster.OpenPageAsync();
        await page.FillAsync("#api-key", "not-the-key");
        await page.SetInputFilesAsync("#image", GoldenCase.All()[0].Image);
        await WaitForImageAsync(page);

        await page.ClickAsync("#run");
        await page.WaitForSelectorAsync("#output[data-state=error]");

        Assert.True(await page.IsVisibleAsync("#error"));
        var error = await page.TextContentAsync("#error");
        Assert.StartsWith("UNAUTHENTICATED: Invalid API key", error);
        Assert.Equal("", await page.TextContentAsync("#text-out"));
        await ScreenshotAsync(page, "wrong-key");
    }

    [Fact]
    public async Task The_page_is_used_with_the_keyboard_alone_and_passes_the_accessibility_rules()
    {
        var golden = GoldenCase.All()[0];
        var page = await cluster.OpenPageAsync();
        var before = await page.RunAxe();
        Assert.NotEmpty(before.Passes); // the rules ran
        Assert.Empty(before.Violations);

        // Every control in tab order, each with a label; Enter in a field runs the request.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("api-key", await page.EvaluateAsync<string>("document.activeElement.id"));
        await page.Keyboard.TypeAsync(WebCluster.ApiKey);
        await page.SetInputFilesAsync("#image", golden.Image);
        await WaitForImageAsync(page);
        await page.FocusAsync("#max-tokens");
        await page.Keyboard.TypeAsync(golden.MaxNewTokens.ToString(CultureInfo.InvariantCulture));
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForFunctionAsync("() => ['done', 'error'].includes(document.getElementById('output').dataset.state)");
        Assert.Equal("done", await page.GetAttributeAsync("#output", "data-state"));
        var unlabelled = await page.EvaluateAsync<int>("[...document.querySelectorAll('input, select')].filter(e => !e.labels || e.labels.length === 0).length");
        Assert.Equal(0, unlabelled);

        // With the answer and its boxes on screen: no axe violation (contrast, names, ARIA), whatever its impact.
        var violations = (await page.RunAxe()).Violations;
        Assert.True(violations.Length == 0, string.Join("\n", violations.Select(v => $"{v.Id} ({v.Impact}): {v.Help} at {string.Join(", ", v.Nodes.Select(n => n.Target?.ToString()))}")));
        await ScreenshotAsync(page, "keyboard");
    }

    private static async Task WaitForImageAsync(IPage page) =>
        await page.WaitForFunctionAsync("() => { const i = document.getElementById('preview'); return i.complete && i.naturalWidth > 0 && !document.getElementById('frame').hidden; }");

    /// <summary>Clicks Run and waits for the answer's end; a refusal fails the test with the page's message.</summary>
    private static async Task RunAsync(IPage page)
    {
        await page.ClickAsync("#run");
        await page.WaitForFunctionAsync("() => ['done', 'error'].includes(document.getElementById('output').dataset.state) && !document.getElementById('run').disabled");
        Assert.True(await page.GetAttributeAsync("#output", "data-state") == "done", $"the page shows an error: {await page.TextContentAsync("#error")}");
    }

    /// <summary>One SVG group per golden entity, labelled with its phrase, with one rect per box at its pixels.</summary>
    private static async Task AssertBoxesAsync(IPage page, GoldenCase golden)
    {
        var (width, height) = TestImages.PngSize(await File.ReadAllBytesAsync(golden.Image));
        var drawn = JsonSerializer.Deserialize<DrawnEntity[]>(await page.EvalOnSelectorAllAsync<string>("#overlay g.entity", """
            groups => JSON.stringify(groups.map(g => ({
              phrase: g.dataset.phrase,
              boxes: [...g.querySelectorAll('rect.box')].map(r => [r.x.baseVal.value, r.y.baseVal.value,
                r.x.baseVal.value + r.width.baseVal.value, r.y.baseVal.value + r.height.baseVal.value]),
            })))
            """), WebJson)!;
        using var expected = JsonDocument.Parse(golden.EntitiesJson);
        var wanted = expected.RootElement.EnumerateArray().ToList();
        Assert.Equal(wanted.Count, drawn.Length);
        for (var i = 0; i < wanted.Count; i++)
        {
            Assert.Equal(wanted[i].GetProperty("phrase").GetString(), drawn[i].Phrase);
            var boxes = wanted[i].GetProperty("boxes").EnumerateArray().ToList();
            Assert.Equal(boxes.Count, drawn[i].Boxes.Length);
            for (var b = 0; b < boxes.Count; b++)
            {
                var n = boxes[b].EnumerateArray().Select(v => v.GetDouble()).ToArray();
                double[] pixels = [n[0] * width, n[1] * height, n[2] * width, n[3] * height];
                // SVG lengths are float32: compare within its precision.
                Assert.All(pixels.Zip(drawn[i].Boxes[b]), p => Assert.Equal(p.First, p.Second, 0.01));
            }
        }
    }

    /// <summary>The patch cells of a golden referring case's one box (normalised or as a patch pair), else null.</summary>
    private static (int Ul, int Lr)? GoldenCells(GoldenCase golden)
    {
        if (golden.BboxesJson is null)
        {
            return null;
        }
        using var json = JsonDocument.Parse(golden.BboxesJson);
        var numbers = new List<JsonElement>();
        void Flatten(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray())
                {
                    Flatten(item);
                }
            }
            else
            {
                numbers.Add(e);
            }
        }
        Flatten(json.RootElement);
        return numbers.Count switch
        {
            4 => PatchIndexCodec.Encode(new NormalizedBox(numbers[0].GetDouble(), numbers[1].GetDouble(), numbers[2].GetDouble(), numbers[3].GetDouble())),
            2 => (numbers[0].GetInt32(), numbers[1].GetInt32()),
            _ => null,
        };
    }

    private static (float X, float Y) CellCentre(int cell, LocatorBoundingBoxResult shown)
    {
        var n = PatchIndexCodec.PatchesPerSide;
        return (shown.X + (float)(((cell % n) + 0.5) / n * shown.Width), shown.Y + (float)(((cell / n) + 0.5) / n * shown.Height));
    }

    private static string Patch(int index) => $"<patch_index_{index.ToString("D4", CultureInfo.InvariantCulture)}>";

    private static JsonElement FinalResult(string lines) =>
        JsonDocument.Parse(lines.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("result");

    private static async Task ScreenshotAsync(IPage page, string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(WebCluster.ArtifactsDir, name + ".png"), FullPage = true });

    private sealed record DrawnEntity(string Phrase, double[][] Boxes);
}
