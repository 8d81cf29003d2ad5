namespace Kosmos2.Model.Tests;

public sealed class ConfigTests
{
    /// <summary>Every value is compared with the golden <c>config.json</c> as plain JSON, so any golden family is checked.</summary>
    [Fact]
    public void Golden_config_reads_nested_objects_and_takes_null_top_level_ids_from_text_config()
    {
        var config = Kosmos2Config.Load(RepoPaths.GoldenModelDir);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.GoldenModelDir, "config.json")));
        var root = json.RootElement;
        var text = root.GetProperty("text_config");
        var vision = root.GetProperty("vision_config");

        Assert.Equal(text.GetProperty("vocab_size").GetInt32(), config.Text.VocabSize);
        Assert.Equal(text.GetProperty("embed_dim").GetInt32(), config.Text.EmbedDim);
        Assert.Equal(text.GetProperty("layers").GetInt32(), config.Text.Layers);
        Assert.Equal(text.GetProperty("attention_heads").GetInt32(), config.Text.AttentionHeads);
        Assert.Equal(text.GetProperty("ffn_dim").GetInt32(), config.Text.FfnDim);
        Assert.Equal(text.GetProperty("max_position_embeddings").GetInt32(), config.Text.MaxPositionEmbeddings);
        Assert.Equal(text.GetProperty("activation_function").GetString(), config.Text.ActivationFunction);
        Assert.Equal(text.GetProperty("scale_embedding").GetBoolean(), config.Text.ScaleEmbedding);
        Assert.Equal(vision.GetProperty("hidden_size").GetInt32(), config.Vision.HiddenSize);
        Assert.Equal(vision.GetProperty("num_hidden_layers").GetInt32(), config.Vision.NumHiddenLayers);
        Assert.Equal(vision.GetProperty("num_attention_heads").GetInt32(), config.Vision.NumAttentionHeads);
        Assert.Equal(vision.GetProperty("intermediate_size").GetInt32(), config.Vision.IntermediateSize);
        Assert.Equal(vision.GetProperty("hidden_act").GetString(), config.Vision.HiddenAct);
        Assert.Equal(root.GetProperty("latent_query_num").GetInt32(), config.LatentQueryNum);
        // Top-level ids that the file leaves null come from text_config, as HF's config does.
        int Id(string name) => root.TryGetProperty(name, out var top) && top.ValueKind == System.Text.Json.JsonValueKind.Number
            ? top.GetInt32()
            : text.GetProperty(name).GetInt32();
        Assert.Equal((Id("bos_token_id"), Id("pad_token_id"), Id("eos_token_id")), (config.BosTokenId, config.PadTokenId, config.EosTokenId));
    }

    [Fact]
    public void Absent_keys_take_the_published_defaults_and_unknown_keys_are_ignored()
    {
        var config = Kosmos2Config.Parse("""{"model_type":"kosmos-2","something_new":[1,2],"text_config":{"id2label":{"0":"a"}}}""");

        Assert.Equal(Kosmos2Config.Default, config);
        Assert.Equal(65037, config.Text.VocabSize);
        Assert.Equal(2048, config.Text.EmbedDim);
        Assert.Equal(24, config.Vision.NumHiddenLayers);
        Assert.Equal(1e-5, config.Text.LayerNormEps);
    }

    [Fact]
    public void Text_aliases_hidden_size_layers_and_heads_are_accepted()
    {
        var config = Kosmos2Config.Parse(
            """{"bos_token_id":null,"text_config":{"hidden_size":128,"num_hidden_layers":3,"num_attention_heads":8,"eos_token_id":7}}""");

        Assert.Equal(128, config.Text.EmbedDim);
        Assert.Equal(3, config.Text.Layers);
        Assert.Equal(8, config.Text.AttentionHeads);
        Assert.Equal(16, config.Text.HeadDim);
        Assert.Equal(7, config.EosTokenId);
        Assert.Equal(0, config.BosTokenId);
    }
}
