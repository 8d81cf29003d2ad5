using System.Text.RegularExpressions;
using Kosmos2.Cli.Tests;
using Microsoft.Playwright;

namespace Kosmos2.Web.Tests;

/// <summary>
/// <c>kosmos2 up</c> on the golden checkpoint with an API key, and a real headless Chromium (Debian's <c>chromium</c>,
/// which .ci/run installs; Playwright's own browser downloads are not reachable). A missing browser fails the tests.
/// </summary>
public sealed partial class WebCluster : IAsyncLifetime
{
    public const string ApiKey = "web-secret-0123456789";

    private UpProcess? _up;
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The page's address as <c>kosmos2 up</c> printed it.</summary>
    public Uri PageUrl { get; private set; } = null!;

    /// <summary>Where screenshots go: <c>$KOSMOS2_TEST_ARTIFACTS</c>, else <c>TestResults/screenshots</c> beside the project.</summary>
    public static string ArtifactsDir
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("KOSMOS2_TEST_ARTIFACTS") is { Length: > 0 } fromEnv
                ? fromEnv
                : Path.Combine(RepoPaths.RepoRoot, "tests", "Kosmos2.Web.Tests", "TestResults", "screenshots");
            return Directory.CreateDirectory(dir).FullName;
        }
    }

    public async Task InitializeAsync()
    {
        var chromium = Environment.GetEnvironmentVariable("KOSMOS2_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            throw new FileNotFoundException($"Chromium not found at {chromium}: apt-get install -y chromium (or set KOSMOS2_CHROMIUM).", chromium);
        }
        _up = await UpProcess.StartAsync(["up", "--model-dir", RepoPaths.GoldenModelDir, "--dtype", "float32",
            "--port", FreePort.Next().ToString(), "--http-port", FreePort.Next().ToString(), "--api-key", ApiKey]);
        var printed = PageAddress().Match(_up.Stdout);
        Assert.True(printed.Success, $"kosmos2 up did not print the page's address: {_up.Stdout}");
        PageUrl = new Uri(printed.Groups[1].Value);

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            // CI runs as root, where Chromium's sandbox cannot start.
            Args = ["--no-sandbox"],
        });
    }

    /// <summary>A fresh tab (its own session storage) at the page.</summary>
    public async Task<IPage> OpenPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 1000 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        await page.GotoAsync(PageUrl.ToString());
        return page;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
        if (_up is not null)
        {
            await _up.StopAndAssertCleanAsync();
            await _up.DisposeAsync();
        }
    }

    [GeneratedRegex(@"web page and HTTP/JSON API: (http://\S+)")]
    private static partial Regex PageAddress();
}
