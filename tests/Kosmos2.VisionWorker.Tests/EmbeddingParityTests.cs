using System.Runtime.InteropServices;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Testing;

namespace Kosmos2.VisionWorker.Tests;

/// <summary>The worker's embeddings equal the reference's golden <c>image_embeds</c> for every golden image.</summary>
public sealed class EmbeddingParityTests
{
    public static TheoryData<string> GoldenImages()
    {
        var data = new TheoryData<string>();
        foreach (var png in Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "images"), "*.png").Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.ChangeExtension(png, ".safetensors")))
            {
                data.Add(Path.GetFileName(png));
            }
        }
        return data;
    }

    [Fact]
    [Trait("Category", "Golden")]
    public void Golden_images_are_present() => Assert.NotEmpty(GoldenImages());

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(GoldenImages))]
    public async Task Embeddings_match_the_reference_within_1e_4(string imageFile)
    {
        await using var worker = await VisionWorkerHost.StartAsync(redis: null);
        var path = Path.Combine(RepoPaths.GoldenDir, "images", imageFile);

        var reply = await worker.EncodeAsync(File.ReadAllBytes(path));

        var expected = new SafetensorsReader(Path.ChangeExtension(path, ".safetensors")).Float32("image_embeds");
        Assert.Equal(TensorDType.Float32, reply.Embeddings.Dtype);
        var actual = MemoryMarshal.Cast<byte, float>(reply.Embeddings.Data.Span).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        Assert.Equal((uint)expected.Length, reply.Embeddings.Shape[0] * reply.Embeddings.Shape[1]);
        var maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(maxDiff <= 1e-4, $"max |diff| = {maxDiff:E2} for {imageFile}");
        Assert.False(reply.CacheHit);
    }
}
