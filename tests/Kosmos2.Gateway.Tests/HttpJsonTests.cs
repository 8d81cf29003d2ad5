using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Kosmos2.Processing.Tokenization;
using Kosmos2.Testing;

namespace Kosmos2.Gateway.Tests;

/// <summary>
/// The gateway's HTTP/JSON face (Service:HttpPort) as curl uses it: plain HTTP/1.1 requests, streams as line-delimited
/// JSON read while the decoder is still generating, the API key and errors as HTTP statuses with a JSON body.
/// </summary>
public sealed class HttpJsonTests
{
    private const string Key = "key-of-acme-0123456789";

    [Fact]
    public async Task Generate_streams_each_message_as_it_happens_and_ends_with_the_result()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.Script);
        workers.Script = [(uint)tokenizer.ObjectStartId, (uint)tokenizer.PatchIndexId(3), (uint)tokenizer.PatchIndexId(900), (uint)tokenizer.ObjectEndId, Kosmos2Tokenizer.EosId];
        workers.HoldPromptsWith = (uint)tokenizer.PhraseEndId; // the final message waits until released
        await using var host = await StartAsync(workers);
        using var http = Client(host, Key);

        using var response = await http.SendAsync(Post("/v1/generate", new
        {
            image = new { data = Convert.ToBase64String(TestImages.RandomPng(64, 48, seed: 3)) },
            prompt = "<grounding><phrase>a cat</phrase>",
        }), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var lines = new StreamReader(await response.Content.ReadAsStreamAsync());

        // The entity arrives while the decoder holds its last token: nothing is buffered to the end.
        var early = new List<JsonElement>();
        while (early.Count == 0 || !early[^1].TryGetProperty("entity", out _))
        {
            early.Add(JsonDocument.Parse(await ReadLineAsync(lines)).RootElement);
        }
        Assert.All(early, m => Assert.False(m.TryGetProperty("result", out _)));
        var entity = early[^1].GetProperty("entity");
        Assert.Equal("a cat", entity.GetProperty("phrase").GetString());
        var pixels = entity.GetProperty("boxes")[0].GetProperty("pixels");
        Assert.True(pixels.GetProperty("x2").GetDouble() > pixels.GetProperty("x1").GetDouble());

        workers.ReleaseAll();
        var rest = await lines.ReadToEndAsync();
        var last = JsonDocument.Parse(rest.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        var result = last.GetProperty("result");
        Assert.Equal("a cat", result.GetProperty("text").GetString());
        Assert.Equal("FINISH_REASON_EOS", result.GetProperty("finishReason").GetString());
        Assert.Equal(workers.Script.Count, result.GetProperty("usage").GetProperty("generatedTokens").GetInt32());
    }

    [Fact]
    public async Task A_chat_is_created_answered_read_and_deleted_over_http()
    {
        var tokenizer = Kosmos2Tokenizer.Load(RepoPaths.GoldenModelDir);
        await using var workers = await FakeWorker.StartAsync(DecoderBehavior.Script);
        workers.Script = [.. tokenizer.Encode("a red square").Select(id => (uint)id), Kosmos2Tokenizer.EosId];
        await using var host = await StartAsync(workers);
        using var http = Client(host, Key);

        using var created = await http.SendAsync(Post("/v1/sessions", new
        {
            image = new { data = Convert.ToBase64String(TestImages.RandomPng(40, 30, seed: 5)) },
            options = new { grounding = true },
        }));
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var session = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        var id = session.GetProperty("id").GetString()!;
        Assert.False(string.IsNullOrEmpty(id));

        for (var turn = 0; turn < 2; turn++)
        {
            using var answered = await http.SendAsync(Post($"/v1/sessions/{id}/turns", new
            {
                text = "What is <phrase>this</phrase>?",
                regions = new[] { new { boxes = new[] { new { x1 = 4, y1 = 3, x2 = 20, y2 = 15 } }, frame = "BOX_FRAME_PIXELS" } },
            }));
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
            var messages = (await answered.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var result = JsonDocument.Parse(messages[^1]).RootElement.GetProperty("result");
            Assert.Equal(id, result.GetProperty("sessionId").GetString());
            Assert.Equal(turn, result.TryGetProperty("turnIndex", out var index) ? index.GetInt32() : 0);
            Assert.Contains("this</phrase><object><patch_index_", result.GetProperty("rawText").GetString());
        }

        var read = JsonDocument.Parse(await http.GetStringAsync($"/v1/sessions/{id}")).RootElement;
        Assert.Equal(2, read.GetProperty("turns").GetArrayLength());
        Assert.Equal("What is <phrase>this</phrase>?", read.GetProperty("turns")[1].GetProperty("text").GetString());

        using var deleted = await http.DeleteAsync($"/v1/sessions/{id}");
        Assert.True(JsonDocument.Parse(await deleted.Content.ReadAsStringAsync()).RootElement.GetProperty("deleted").GetBoolean());
        using var gone = await http.GetAsync($"/v1/sessions/{id}");
        await AssertStatusAsync(gone, HttpStatusCode.NotFound, code: 5, "session");
    }

    [Fact]
    public async Task Refusals_map_to_http_statuses_with_the_grpc_status_in_the_json_body()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var host = await StartAsync(workers);

        using (var anonymous = Client(host, key: null))
        using (var noKey = await anonymous.GetAsync("/v1/info"))
        {
            await AssertStatusAsync(noKey, HttpStatusCode.Unauthorized, code: 16, "Missing API key");
        }
        using (var wrong = Client(host, "not-a-key"))
        using (var wrongKey = await wrong.SendAsync(Post("/v1/generate", new { task = "TASK_KIND_BRIEF_CAPTION" })))
        {
            await AssertStatusAsync(wrongKey, HttpStatusCode.Unauthorized, code: 16, "Invalid API key");
        }

        using var http = Client(host, Key);
        using var noImage = await http.SendAsync(Post("/v1/generate", new { task = "TASK_KIND_BRIEF_CAPTION" }));
        await AssertStatusAsync(noImage, HttpStatusCode.BadRequest, code: 3, "image");
        using var notJson = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/generate")
        {
            Content = new StringContent("{\"task\": ", Encoding.UTF8, "application/json"),
        });
        await AssertStatusAsync(notJson, HttpStatusCode.BadRequest, code: 3, "");
        // A lone surrogate escaped in JSON (what JSON.stringify writes for one) is no string: 400, as over gRPC.
        using var loneSurrogate = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/generate")
        {
            Content = new StringContent("{\"task\": \"TASK_KIND_VQA\", \"text\": \"what \\ud800 is it?\"}", Encoding.UTF8, "application/json"),
        });
        await AssertStatusAsync(loneSurrogate, HttpStatusCode.BadRequest, code: 3, "");
        using var badTask = await http.SendAsync(Post("/v1/generate", new { task = "TASK_KIND_DANCE" }));
        await AssertStatusAsync(badTask, HttpStatusCode.BadRequest, code: 3, "TASK_KIND_DANCE");

        using var info = await http.GetAsync("/v1/info");
        Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        Assert.Equal(HttpVersion.Version11, info.Version);
        Assert.Equal("microsoft/kosmos-2-patch14-224", JsonDocument.Parse(await info.Content.ReadAsStringAsync()).RootElement.GetProperty("modelId").GetString());

        // HTTP/2 clients get the same JSON routes on the gRPC port (prior knowledge; plain-text Kestrel offers no ALPN).
        using var h2 = new HttpClient();
        using var infoOverH2 = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{host.Host.App.Configuration["Service:Port"]}/v1/info")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        infoOverH2.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        using var answered = await h2.SendAsync(infoOverH2);
        Assert.True(answered.StatusCode == HttpStatusCode.OK, $"{answered.StatusCode}: {await answered.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpVersion.Version20, answered.Version);
    }

    [Fact]
    public async Task The_page_and_its_modules_are_served_at_the_root_without_a_key()
    {
        await using var workers = await FakeWorker.StartAsync();
        await using var host = await StartAsync(workers);
        using var http = Client(host, key: null);

        var page = await http.GetStringAsync("/");
        Assert.Contains("<script type=\"module\" src=\"app.js\">", page);
        Assert.DoesNotContain("https://", page); // no CDN: everything comes from the gateway
        foreach (var file in new[] { "app.js", "api.js", "overlay.js", "app.css" })
        {
            using var response = await http.GetAsync("/" + file);
            Assert.True(response.IsSuccessStatusCode, $"/{file}: {response.StatusCode}");
        }
    }

    private sealed record HttpGateway(GatewayHost Host, int HttpPort) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Host.DisposeAsync();
    }

    private static async Task<HttpGateway> StartAsync(FakeWorker workers)
    {
        var httpPort = FreePort.Next();
        var host = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["Service:HttpPort"] = httpPort.ToString(),
            ["Gateway:TokenizerDir"] = RepoPaths.GoldenModelDir,
            ["Gateway:VisionWorkers"] = workers.Url,
            ["Gateway:DecoderWorkers"] = workers.Url,
            ["Auth:ApiKeys:0:Key"] = Key,
            ["Auth:ApiKeys:0:Tenant"] = "acme",
        });
        return new HttpGateway(host, httpPort);
    }

    private static HttpClient Client(HttpGateway gateway, string? key)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}"), Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return http;
    }

    private static HttpRequestMessage Post(string path, object body) => new(HttpMethod.Post, path)
    {
        Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
    };

    private static async Task<string> ReadLineAsync(StreamReader reader)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        return await reader.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("the stream ended early");
    }

    private static async Task AssertStatusAsync(HttpResponseMessage response, HttpStatusCode status, int code, string messagePart)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(code, json.GetProperty("code").GetInt32());
        Assert.Contains(messagePart, json.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
    }
}
