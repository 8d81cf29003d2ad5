using System.Buffers.Binary;
using Grpc.Core;
using Kosmos2.Testing;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>Hostile and unusual images are either encoded or refused with INVALID_ARGUMENT; the worker keeps serving.</summary>
public sealed class BadInputTests
{
    private static string Fixture(string name) => Path.Combine(RepoPaths.RepoRoot, "tests", "Kosmos2.Processing.Tests", "Fixtures", name);

    /// <summary>(name, bytes, must it be accepted?) — null means either outcome is fine as long as it is clean.</summary>
    private static IEnumerable<(string Name, byte[] Bytes, bool? Accepted)> Corpus()
    {
        var png = TestImages.RandomPng(40, 30, seed: 11);
        var jpeg = File.ReadAllBytes(Fixture("rgb_40x30.jpg"));
        yield return ("empty", [], false);
        yield return ("one byte", [0], false);
        yield return ("truncated png", png[..(png.Length / 2)], false);
        yield return ("truncated jpeg", jpeg[..(jpeg.Length / 2)], null);
        yield return ("wrong magic", [.. "GIF00"u8, .. png[5..]], false);
        yield return ("text", "hello, this is not an image"u8.ToArray(), false);
        yield return ("huge declared dimensions", WithDimensions(png, 100_000, 100_000), false);
        yield return ("zero width", WithDimensions(png, 0, 30), false);
        yield return ("1x1", File.ReadAllBytes(Fixture("one_1x1.png")), true);
        yield return ("animated gif", File.ReadAllBytes(Fixture("animated_20x10.gif")), true);
        yield return ("16-bit png", File.ReadAllBytes(Fixture("rgb16_40x30.png")), true);
        yield return ("cmyk jpeg", File.ReadAllBytes(Fixture("cmyk_40x30.jpg")), null);
        yield return ("grayscale png", File.ReadAllBytes(Fixture("gray_40x30.png")), true);
        yield return ("rgba png", File.ReadAllBytes(Fixture("rgba_40x30.png")), true);
        yield return ("webp", File.ReadAllBytes(Fixture("rgb_40x30.webp")), true);
        yield return ("bmp", File.ReadAllBytes(Fixture("rgb_40x30.bmp")), true);
        yield return ("jpeg", jpeg, true);
    }

    [Fact]
    public async Task Every_bad_input_is_served_or_refused_cleanly_and_the_worker_keeps_serving()
    {
        await using var worker = await VisionWorkerHost.StartAsync(redis: null);
        var outcomes = new List<string>();
        foreach (var (name, bytes, accepted) in Corpus())
        {
            try
            {
                var reply = await worker.EncodeAsync(bytes);
                Assert.True(accepted != false, $"{name} should have been refused");
                Assert.Equal(64u, reply.Embeddings.Shape[0]);
                outcomes.Add($"{name}: encoded");
            }
            catch (RpcException ex)
            {
                Assert.True(ex.StatusCode == StatusCode.InvalidArgument, $"{name}: {ex.StatusCode} {ex.Status.Detail}");
                Assert.True(accepted != true, $"{name} should have been encoded, got: {ex.Status.Detail}");
                Assert.False(string.IsNullOrWhiteSpace(ex.Status.Detail));
                outcomes.Add($"{name}: refused ({ex.Status.Detail})");
            }
        }
        Assert.False(worker.Process.HasExited);
        var good = await worker.EncodeAsync(TestImages.RandomPng(32, 32, seed: 12));
        Assert.Equal(64u, good.Embeddings.Shape[0]);
    }

    [Fact]
    public async Task An_image_over_the_byte_limit_is_refused_naming_the_limit()
    {
        await using var worker = await VisionWorkerHost.StartAsync(redis: null, new Dictionary<string, string> { ["Vision__MaxImageBytes"] = "1000" });
        var ex = await Assert.ThrowsAsync<RpcException>(() => worker.EncodeAsync(TestImages.RandomPng(64, 64, seed: 13)));
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("limit", ex.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A PNG whose IHDR declares other dimensions (CRC fixed up, so only the size is hostile).</summary>
    private static byte[] WithDimensions(byte[] png, int width, int height)
    {
        var copy = (byte[])png.Clone();
        BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(20), height);
        var crc = System.IO.Hashing.Crc32.HashToUInt32(copy.AsSpan(12, 17));
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(29), crc);
        return copy;
    }
}
