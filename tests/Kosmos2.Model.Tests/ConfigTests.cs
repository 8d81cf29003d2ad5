using Kosmos2.Testing;

namespace Kosmos2.Model.Tests;

public sealed class ConfigTests
{
    [Fact]
    public void Golden_config_reads_nested_objects_and_takes_null_top_level_ids_from_text_config()
    {
        var config = Kosmos2Config.Load(RepoPaths.GoldenModelDir);

        Assert.Equal(2037, config.Text.VocabSize);
        Assert.Equal(64, config.Text.EmbedDim);
        Assert.Equal(2, config.Text.Layers);
        Assert.Equal(4, config.Text.AttentionHeads);
        Assert.Equal(128, config.Text.FfnDim);
        Assert.Equal(2048, config.Text.MaxPositionEmbeddings);
        Assert.Equal("gelu", config.Text.ActivationFunction);
        Assert.True(config.Text.ScaleEmbedding);
        Assert.Equal(32, config.Vision.HiddenSize);
        Assert.Equal(2, config.Vision.NumHiddenLayers);
        Assert.Equal(4, config.Vision.NumAttentionHeads);
        Assert.Equal(128, config.Vision.IntermediateSize);
        Assert.Equal("quick_gelu", config.Vision.HiddenAct);
        Assert.Equal(64, config.LatentQueryNum);
        Assert.Equal((0, 1, 2), (config.BosTokenId, config.PadTokenId, config.EosTokenId));
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
