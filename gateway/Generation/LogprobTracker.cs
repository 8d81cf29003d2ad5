using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Processing.Grounding;
using Kosmos2.Processing.Tokenization;

namespace Kosmos2.Gateway.Generation;

/// <summary>A generation's log-probabilities: one per generated token, and per box of each final entity (null = the box came with the prompt).</summary>
public sealed record OutcomeLogprobs(IReadOnlyList<TokenLogprob> Tokens, IReadOnlyList<float?[]> EntityBoxes);

/// <summary>
/// Follows one generation that asked for log-probabilities: turns the decoder's into public <see cref="TokenLogprob"/>s
/// and gives each generated box its confidence, the mean log-probability of its two patch tokens. Boxes are read off
/// the token ids (each generated <c>&lt;/object&gt;</c> back to its <c>&lt;object&gt;</c>) and matched to the parser's
/// entities by their patch pair, in order, since an entity may be reported some tokens after its <c>&lt;/object&gt;</c>.
/// </summary>
public sealed class LogprobTracker(Kosmos2Tokenizer tokenizer)
{
    private readonly List<int> _ids = [];
    private readonly List<TokenLogprob> _tokens = [];
    private readonly List<(int Ul, int Lr, float Mean)> _unclaimed = [];
    private readonly List<float?[]> _found = [];

    public IReadOnlyList<TokenLogprob> Tokens => _tokens;

    /// <summary>Records one generated token with the decoder's log-probabilities; returns its public form.</summary>
    public TokenLogprob Add(int id, DecodeLogprob? decoded)
    {
        var proto = new TokenLogprob { TokenId = (uint)id, Token = TokenText(id), Logprob = decoded?.Logprob ?? float.NaN };
        for (var i = 0; decoded is not null && i < decoded.TopTokenIds.Count && i < decoded.TopLogprobs.Count; i++)
        {
            var top = (int)decoded.TopTokenIds[i];
            proto.Top.Add(new TopLogprob { TokenId = (uint)top, Token = TokenText(top), Logprob = decoded.TopLogprobs[i] });
        }
        _ids.Add(id);
        _tokens.Add(proto);
        if (id == tokenizer.ObjectEndId)
        {
            CollectBoxes();
        }
        return proto;
    }

    /// <summary>The per-box confidences of an entity the parser just reported (null for a box not generated here).</summary>
    public float?[] Claim(GroundedEntity entity)
    {
        var confidences = new float?[entity.PatchBoxes.Count];
        for (var b = 0; b < confidences.Length; b++)
        {
            var (ul, lr) = entity.PatchBoxes[b];
            var at = _unclaimed.FindIndex(box => box.Ul == ul && box.Lr == lr);
            if (at >= 0)
            {
                confidences[b] = _unclaimed[at].Mean;
                _unclaimed.RemoveRange(0, at + 1); // boxes before it made no entity (a form the reference drops)
            }
        }
        _found.Add(confidences);
        return confidences;
    }

    /// <summary>The model wrote <c>&lt;/image&gt;</c> again: entities start over.</summary>
    public void Restart()
    {
        _unclaimed.Clear();
        _found.Clear();
    }

    /// <summary>Per final entity: the generated ones (the last of the result) carry their confidences.</summary>
    public OutcomeLogprobs Complete(GroundingResult result)
    {
        var boxes = new float?[result.Entities.Count][];
        var firstGenerated = result.Entities.Count - _found.Count;
        for (var i = 0; i < boxes.Length; i++)
        {
            boxes[i] = i >= firstGenerated && i - firstGenerated < _found.Count ? _found[i - firstGenerated] : new float?[result.Entities[i].PatchBoxes.Count];
        }
        return new OutcomeLogprobs(_tokens, boxes);
    }

    /// <summary>The boxes of the object just closed, when its <c>&lt;object&gt;</c> was generated too.</summary>
    private void CollectBoxes()
    {
        var patches = new List<int>();
        for (var i = _ids.Count - 2; i >= 0; i--)
        {
            if (_ids[i] == tokenizer.ObjectStartId)
            {
                patches.Reverse();
                for (var p = 0; p + 1 < patches.Count; p += 2)
                {
                    var (ul, lr) = (patches[p], patches[p + 1]);
                    tokenizer.TryGetPatchIndex(_ids[ul], out var ulIndex);
                    tokenizer.TryGetPatchIndex(_ids[lr], out var lrIndex);
                    _unclaimed.Add((ulIndex, lrIndex, (_tokens[ul].Logprob + _tokens[lr].Logprob) / 2));
                }
                return;
            }
            if (tokenizer.TryGetPatchIndex(_ids[i], out _))
            {
                patches.Add(i);
            }
        }
    }

    private string TokenText(int id) => (uint)id < (uint)tokenizer.VocabSize ? tokenizer.IdToToken(id) : "";
}
