using Kosmos2.Processing.Tokenization;
using Microsoft.Extensions.Options;

namespace Kosmos2.Gateway.Generation;

/// <summary>
/// The gateway owns text: it loads the tokenizer (a few MB, no weights) from <c>Gateway:TokenizerDir</c>, a checkpoint
/// folder holding <c>sentencepiece.bpe.model</c> and the added-token files. Loaded once, shared by all calls (read-only).
/// </summary>
public sealed class GatewayTokenizer
{
    private readonly Lazy<Kosmos2Tokenizer> _tokenizer;

    public GatewayTokenizer(IOptions<GatewayOptions> options)
    {
        var dir = options.Value.TokenizerDir;
        _tokenizer = new Lazy<Kosmos2Tokenizer>(() =>
        {
            if (string.IsNullOrWhiteSpace(dir) || !Directory.Exists(dir))
            {
                throw new InvalidOperationException(
                    $"Gateway:TokenizerDir ('{dir}') is not a folder: point it at the kosmos-2-patch14-224 checkpoint folder (it needs sentencepiece.bpe.model and the added-token files).");
            }
            return Kosmos2Tokenizer.Load(dir);
        });
    }

    public Kosmos2Tokenizer Tokenizer => _tokenizer.Value;

    public int[] Encode(string text) => Tokenizer.Encode(text);

    public string Decode(IReadOnlyList<int> ids) => Tokenizer.Decode(ids);
}
