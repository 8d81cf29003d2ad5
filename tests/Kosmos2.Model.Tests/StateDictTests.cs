using TorchSharp;

namespace Kosmos2.Model.Tests;

/// <summary>The full-size module tree built on the meta device (no memory) has exactly the published keys (SPEC §1.2).</summary>
public sealed class StateDictTests
{
    [Fact]
    public void Full_size_default_config_has_the_published_names_shapes_and_counts()
    {
        using var model = new Kosmos2ForConditionalGeneration(Kosmos2Config.Default, torch.META, torch.ScalarType.Float32);
        var stored = model.state_dict().Where(kv => kv.Key != Kosmos2ForConditionalGeneration.LmHeadKey)
            .ToDictionary(kv => kv.Key, kv => kv.Value.shape);

        var expected = ExpectedKeys();
        Assert.Empty(expected.Keys.Except(stored.Keys));
        Assert.Empty(stored.Keys.Except(expected.Keys));
        foreach (var (key, shape) in expected)
        {
            Assert.True(shape.SequenceEqual(stored[key]), $"{key}: [{string.Join(",", stored[key])}] vs [{string.Join(",", shape)}]");
        }
        Assert.Equal(885, stored.Count);
        Assert.Equal(1_664_485_376L, stored.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void Lm_head_is_the_embed_tokens_tensor()
    {
        using var model = new Kosmos2ForConditionalGeneration(Kosmos2Config.Default, torch.META, torch.ScalarType.Float32);
        var embed = model.TextModel.Model.EmbedTokens.weight!;
        var head = model.TextModel.LmHead.weight!;

        Assert.Equal(new long[] { 65037, 2048 }, head.shape);
        Assert.Null(model.TextModel.LmHead.bias);
    }

    [Fact]
    public void Lm_head_shares_storage_with_embed_tokens_after_loading()
    {
        using var model = Kosmos2Model.Load(RepoPaths.GoldenModelDir, torch.ScalarType.Float32, torch.CPU);
        var embed = model.TextDecoder.Model.EmbedTokens.weight!;
        var head = model.TextDecoder.LmHead.weight!;

        Assert.Equal(embed.shape, head.shape);
        using var noGrad = torch.no_grad();
        var before = head[5, 3].item<float>();
        embed.narrow(0, 5, 1).add_(1.0f); // one storage: the head sees the change
        Assert.Equal(before + 1.0f, head[5, 3].item<float>());
    }

    private static Dictionary<string, long[]> ExpectedKeys()
    {
        var keys = new Dictionary<string, long[]>();
        void Linear(string p, long o, long i)
        {
            keys[p + ".weight"] = [o, i];
            keys[p + ".bias"] = [o];
        }
        void Norm(string p, long d)
        {
            keys[p + ".weight"] = [d];
            keys[p + ".bias"] = [d];
        }
        keys["text_model.model.embed_tokens.weight"] = [65037, 2048];
        for (var i = 0; i < 24; i++)
        {
            var t = $"text_model.model.layers.{i}.";
            foreach (var p in new[] { "q", "k", "v", "out" })
            {
                Linear(t + $"self_attn.{p}_proj", 2048, 2048);
            }
            Norm(t + "self_attn.inner_attn_ln", 2048);
            Norm(t + "self_attn_layer_norm", 2048);
            Linear(t + "ffn.fc1", 8192, 2048);
            Norm(t + "ffn.ffn_layernorm", 8192);
            Linear(t + "ffn.fc2", 2048, 8192);
            Norm(t + "final_layer_norm", 2048);
            var v = $"vision_model.model.encoder.layers.{i}.";
            foreach (var p in new[] { "q", "k", "v", "out" })
            {
                Linear(v + $"self_attn.{p}_proj", 1024, 1024);
            }
            Norm(v + "layer_norm1", 1024);
            Linear(v + "mlp.fc1", 4096, 1024);
            Linear(v + "mlp.fc2", 1024, 4096);
            Norm(v + "layer_norm2", 1024);
        }
        Norm("text_model.model.layer_norm", 2048);
        keys["vision_model.model.embeddings.class_embedding"] = [1024];
        keys["vision_model.model.embeddings.patch_embedding.weight"] = [1024, 3, 14, 14];
        keys["vision_model.model.embeddings.position_embedding.weight"] = [257, 1024];
        Norm("vision_model.model.pre_layrnorm", 1024);
        Norm("vision_model.model.post_layernorm", 1024);
        Linear("image_to_text_projection.dense", 2048, 1024);
        keys["image_to_text_projection.latent_query"] = [64, 2048];
        foreach (var p in new[] { "q", "k", "v", "out" })
        {
            Linear($"image_to_text_projection.x_attn.{p}_proj", 2048, 2048);
        }
        return keys;
    }
}
