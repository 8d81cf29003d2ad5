using System.Text.Json;

using Kosmos2.Launch;

namespace Kosmos2.Testing;

/// <summary>Facts of the golden checkpoint read from its <c>config.json</c>, for tests that need them as plain numbers.</summary>
public static class GoldenModel
{
    /// <summary>Image placeholders in a prompt (<c>latent_query_num</c>; HF's default 64 when the file leaves it out).</summary>
    public static int LatentQueryNum()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.GoldenModelDir, "config.json")));
        return json.RootElement.TryGetProperty("latent_query_num", out var n) ? n.GetInt32() : 64;
    }
}
