using System.Text.Json;
using Google.Protobuf;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Testing;

namespace Kosmos2.DecoderWorker.Tests;

/// <summary>A golden prompt as the decoder sees it: ids, image embeddings, and the reference's greedy tokens.</summary>
public sealed record GoldenPrompt(string Name, uint[] InputIds, float[] ImageEmbeds, int HiddenSize, uint ImageOffset, int MaxNewTokens, int[] ExpectedNewTokens)
{
    public DecodeRequest ToRequest(int? maxNewTokens = null)
    {
        var request = new DecodeRequest
        {
            RequestId = Name,
            ImageOffset = ImageOffset,
            Stopping = new DecodeStopping { MaxNewTokens = (uint)(maxNewTokens ?? MaxNewTokens) },
            ImageEmbeddings = new TensorBytes
            {
                Dtype = TensorDType.Float32,
                Data = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ImageEmbeds.AsSpan())),
            },
        };
        request.ImageEmbeddings.Shape.Add([(uint)(ImageEmbeds.Length / HiddenSize), (uint)HiddenSize]);
        request.InputIds.Add(InputIds);
        return request;
    }
}

/// <summary>Every golden case and every row of every golden batch, discovered from the folder (a new one is picked up with no code change).</summary>
public static class GoldenPrompts
{
    public static IReadOnlyList<GoldenPrompt> Cases()
    {
        var cases = new List<GoldenPrompt>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "cases"), "case.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var root = json.RootElement;
            var tensors = new SafetensorsReader(Path.Combine(Path.GetDirectoryName(file)!, "tensors.safetensors"));
            var embeds = tensors.Float32("image_embeds");
            var hidden = (int)tensors.Shape("image_embeds")[^1];
            var generation = root.GetProperty("generation");
            cases.Add(new GoldenPrompt(
                root.GetProperty("name").GetString()!,
                root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetUInt32()).ToArray(),
                embeds,
                hidden,
                (uint)FirstImagePosition(root.GetProperty("image_embeds_position_mask")),
                generation.GetProperty("max_new_tokens").GetInt32(),
                generation.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()));
        }
        return cases;
    }

    /// <summary>Batch rows with their left padding removed (the serving layout: each row in its own KV slot) and tokens up to the row's <c>&lt;/s&gt;</c>.</summary>
    public static IReadOnlyList<GoldenPrompt> BatchRows()
    {
        var rows = new List<GoldenPrompt>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.GoldenDir, "batches"), "batch.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var root = json.RootElement;
            var tensors = new SafetensorsReader(Path.Combine(Path.GetDirectoryName(file)!, "tensors.safetensors"));
            var embeds = tensors.Float32("image_embeds");
            var shape = tensors.Shape("image_embeds");
            var perRow = (int)(shape[1] * shape[2]);
            var index = 0;
            foreach (var row in root.GetProperty("rows").EnumerateArray())
            {
                var pad = row.GetProperty("left_pad_count").GetInt32();
                var ids = row.GetProperty("input_ids").EnumerateArray().Skip(pad).Select(e => e.GetUInt32()).ToArray();
                var newTokens = row.GetProperty("generation").GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
                var eos = newTokens.IndexOf(2);
                var expected = eos >= 0 ? newTokens.Take(eos + 1).ToArray() : newTokens.ToArray();
                rows.Add(new GoldenPrompt(
                    $"{root.GetProperty("name").GetString()}[{index}]",
                    ids,
                    embeds.AsSpan(index * perRow, perRow).ToArray(),
                    (int)shape[2],
                    (uint)(FirstImagePosition(row.GetProperty("image_embeds_position_mask")) - pad),
                    root.GetProperty("max_new_tokens").GetInt32(),
                    expected));
                index++;
            }
        }
        return rows;
    }

    private static int FirstImagePosition(JsonElement mask)
    {
        var i = 0;
        foreach (var value in mask.EnumerateArray())
        {
            if (value.GetInt32() == 1)
            {
                return i;
            }
            i++;
        }
        throw new InvalidDataException("image_embeds_position_mask has no 1.");
    }
}
