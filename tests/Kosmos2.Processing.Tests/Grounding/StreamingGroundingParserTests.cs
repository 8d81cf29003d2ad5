using System.Text;
using System.Text.RegularExpressions;
using Kosmos2.Processing.Grounding;

namespace Kosmos2.Processing.Tests.Grounding;

/// <summary>
/// The streaming invariant: with no restart, <c>PromptText + concat(deltas) == final CleanText</c> and
/// <c>PromptEntities ++ entity events == final Entities</c>, the final result equals
/// <see cref="GroundingPostProcessor.Process"/> of the full decode, and each entity arrives with its <c>&lt;/object&gt;</c>.
/// </summary>
public sealed partial class StreamingGroundingParserTests
{
    public static TheoryData<int> PostprocessCases() => GoldenJson.IndexData("postprocess_cases.json", "cases");

    public static TheoryData<string> Cases() => GoldenJson.CaseData();

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(PostprocessCases))]
    public void Pseudo_token_stream_of_a_postprocess_case_adds_up(int index)
    {
        var text = GoldenJson.Load("postprocess_cases.json").GetProperty("cases")[index].GetProperty("generated_text").GetString()!;
        foreach (var pieceLength in new[] { 1, 2, 3, 5 })
        {
            var vocab = new List<string>();
            var ids = PseudoTokens(text, pieceLength, vocab);
            var run = Stream(ids, [], idsToDecode => string.Concat(idsToDecode.Select(i => vocab[i])));
            run.AssertInvariant(GroundingPostProcessor.Process(text));

            // Entities arrive on the very token that closes their </object> (every golden case has visible text first).
            var expectedSteps = new List<int>();
            for (var step = 0; step < ids.Count; step++)
            {
                if (vocab[ids[step]] == "</object>")
                {
                    var before = GroundingPostProcessor.Process(string.Concat(ids.Take(step + 1).Select(i => vocab[i]))).Entities.Count;
                    var prev = GroundingPostProcessor.Process(string.Concat(ids.Take(step).Select(i => vocab[i]))).Entities.Count;
                    expectedSteps.AddRange(Enumerable.Repeat(step, before - prev));
                }
            }
            if (run.Restarts == 0)
            {
                Assert.Equal(expectedSteps, run.EntitySteps);
            }
        }
    }

    [Theory]
    [Trait("Category", "Golden")]
    [MemberData(nameof(Cases))]
    public void Golden_case_streamed_with_its_prompt_gives_the_reference_result(string name)
    {
        var c = GoldenJson.Case(name);
        var g = c.GetProperty("generation");
        var tokenOf = new Dictionary<int, string>();
        AddTokens(tokenOf, c.GetProperty("input_ids"), c.GetProperty("input_tokens"));
        AddTokens(tokenOf, g.GetProperty("new_token_ids"), g.GetProperty("new_tokens"));
        string Decode(IReadOnlyList<int> ids) => SpmDecode(ids.Select(i => tokenOf[i]));

        var sequence = g.GetProperty("sequence").EnumerateArray().Select(e => e.GetInt32()).ToList();
        // The test's decoder (SPEC §7.3 over the golden token strings) must reproduce the golden decode first.
        Assert.Equal(g.GetProperty("decoded_text").GetString(), Decode(sequence));

        var prompt = c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var generated = g.GetProperty("new_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var run = Stream(generated, prompt, Decode);
        Assert.Equal(0, run.Restarts);
        Assert.Equal(g.GetProperty("clean_text").GetString(), run.Final.CleanText);
        GoldenJson.AssertEntities(g.GetProperty("entities"), run.Final.Entities);
        run.AssertInvariant(GroundingPostProcessor.Process(Decode(sequence)));

        // Decoding the generated ids alone is NOT the reference (first ▁ dropped), which is why the prompt is passed.
        var promptOnlyCaption = GroundingPostProcessor.ExtractCaption(Decode(prompt));
        Assert.Equal(run.PromptText, GroundingPostProcessor.Process(promptOnlyCaption).CleanText);
    }

    [Fact]
    public void Referring_prompt_entity_is_a_prompt_entity_and_text_continues_it()
    {
        string[] vocab = ["<image>", "</image>", "<grounding>", "<phrase>", "▁It", "</phrase>", "<object>", "<patch_index_0291>", "<patch_index_0786>", "</object>", "▁is", "▁a", "▁dog", "▁.", "</s>"];
        var parser = new StreamingGroundingParser(ids => SpmDecode(ids.Select(i => vocab[i])), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        Assert.Equal("It is", parser.PromptText);
        var entity = Assert.Single(parser.PromptEntities);
        Assert.Equal(("It", 0, 2), (entity.Phrase, entity.SpanStart, entity.SpanEnd));

        var deltas = new StringBuilder();
        foreach (var id in new[] { 11, 12, 13, 14 })
        {
            foreach (var e in parser.Push(id))
            {
                deltas.Append(Assert.IsType<GroundingTextDelta>(e).Text);
            }
        }
        var done = parser.Complete();
        deltas.Append(string.Concat(done.Events.OfType<GroundingTextDelta>().Select(d => d.Text)));
        Assert.Equal("It is a dog.", done.Result.CleanText);
        Assert.Equal(" a dog.", deltas.ToString());
    }

    [Fact]
    public void Space_before_punctuation_is_held_until_clean_up_decides()
    {
        string[] vocab = ["▁A", "▁cat", "▁", ".", "▁'", "s", "▁n", "'", "t"];
        var parser = new StreamingGroundingParser(ids => SpmDecode(ids.Select(i => vocab[i])), [0]);
        Assert.Equal("A", parser.PromptText);
        Assert.Equal(" cat", Texts(parser.Push(1)));
        Assert.Equal("", Texts(parser.Push(2)));   // "A cat " — the space may vanish
        Assert.Equal(".", Texts(parser.Push(3)));  // "A cat." — it did
        Assert.Equal("", Texts(parser.Push(4)));   // " '" may become "'s"
        Assert.Equal("'s", Texts(parser.Push(5)));
        Assert.Equal("", Texts(parser.Push(6)));   // " n" may be "n't"
        Assert.Equal("", Texts(parser.Push(7)));
        Assert.Equal("n't", Texts(parser.Push(8)));
        Assert.Equal("A cat.'sn't", parser.Complete().Result.CleanText);
    }

    [Fact]
    public void Unclosed_angle_bracket_is_held_then_released_as_text_at_the_end()
    {
        string[] vocab = ["▁a", "▁<", "▁b"];
        var parser = new StreamingGroundingParser(ids => SpmDecode(ids.Select(i => vocab[i])));
        Assert.Equal("a", Texts(parser.Push(0)));
        Assert.Equal("", Texts(parser.Push(1)));
        Assert.Equal("", Texts(parser.Push(2)));
        var done = parser.Complete();
        Assert.Equal(" < b", Texts(done.Events));
        Assert.Equal("a < b", done.Result.CleanText);
    }

    [Fact]
    public void Another_end_of_image_restarts_the_caption()
    {
        string[] vocab = ["▁junk", "</image>", "▁real", "▁text"];
        var run = Stream([0, 1, 2, 3], [], ids => SpmDecode(ids.Select(i => vocab[i])));
        Assert.Equal(1, run.Restarts);
        run.AssertInvariant(GroundingPostProcessor.Process("junk</image> real text"));
    }

    [Fact]
    public void Random_streams_with_clean_up_never_send_text_that_changes()
    {
        string[] pieces =
        [
            "▁", "▁n", "n", "'", "▁'", "t", "s", "▁s", "▁.", ".", ",", "▁,", "▁!", "?", "ve", "▁ve", "re", "m", "▁x", "x", "▁the",
            "<phrase>", "</phrase>", "<object>", "</object>", "<patch_index_0001>", "<patch_index_0002>", "</delimiter_of_multi_objects/>",
            "<", ">", "▁<", "\n", "<grounding>", "é", "😀", "\t", "</image>", "<image>", "▁a",
        ];
        var random = new Random(FuzzSeed);
        for (var iteration = 0; iteration < FuzzIterations; iteration++)
        {
            var promptLength = random.Next(4);
            var prompt = Enumerable.Range(0, promptLength).Select(_ => random.Next(pieces.Length)).ToList();
            if (random.Next(2) == 0)
            {
                prompt.InsertRange(0, [Array.IndexOf(pieces, "<image>"), Array.IndexOf(pieces, "▁a"), Array.IndexOf(pieces, "</image>")]);
            }
            var generated = Enumerable.Range(0, random.Next(1, 40)).Select(_ => random.Next(pieces.Length)).ToList();
            string Decode(IReadOnlyList<int> ids) => SpmDecode(ids.Select(i => pieces[i]));

            var run = Stream(generated, prompt, Decode);
            var full = Decode([.. prompt, .. generated]);
            var label = $"iteration {iteration}: prompt {Show(prompt, pieces)} generated {Show(generated, pieces)}";
            run.AssertInvariant(GroundingPostProcessor.Process(full), label);
            if (Count(full, "</image>") == Count(Decode(prompt), "</image>"))
            {
                // No new </image> was produced: a restart would mean text was sent that later changed.
                Assert.True(run.Restarts == 0, label);
            }
        }
    }

    private static readonly int FuzzIterations =
        int.TryParse(Environment.GetEnvironmentVariable("KOSMOS2_FUZZ_ITERATIONS"), out var n) ? n : 3000;

    private static readonly int FuzzSeed =
        int.TryParse(Environment.GetEnvironmentVariable("KOSMOS2_FUZZ_SEED"), out var seed) ? seed : 1234;

    private static string Show(List<int> ids, string[] pieces) => string.Join("|", ids.Select(i => pieces[i].Replace("\n", "\\n", StringComparison.Ordinal)));

    private static int Count(string s, string what) => Regex.Count(s, Regex.Escape(what));

    private static string Texts(IEnumerable<GroundingStreamEvent> events) =>
        string.Concat(events.OfType<GroundingTextDelta>().Select(d => d.Text));

    private static void AddTokens(Dictionary<int, string> into, System.Text.Json.JsonElement ids, System.Text.Json.JsonElement tokens)
    {
        for (var i = 0; i < ids.GetArrayLength(); i++)
        {
            into[ids[i].GetInt32()] = tokens[i].GetString()!;
        }
    }

    /// <summary>
    /// SPEC §7.3 over token strings: drop specials, concatenate, ▁ → space except in the first kept token (dropped),
    /// then <c>clean_up_tokenization_spaces</c>. A stand-in for <c>Kosmos2Tokenizer.Decode</c> until it lands.
    /// </summary>
    internal static string SpmDecode(IEnumerable<string> tokens)
    {
        var sb = new StringBuilder();
        var first = true;
        foreach (var t in tokens)
        {
            if (t is "<s>" or "</s>" or "<pad>" or "<unk>" or "<mask>")
            {
                continue;
            }
            sb.Append(first ? t.Replace("▁", "", StringComparison.Ordinal) : t.Replace('▁', ' '));
            first = false;
        }
        return sb.ToString()
            .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
            .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
            .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
            .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
            .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
    }

    /// <summary>Each tag one token, text cut into pieces of <paramref name="pieceLength"/> characters (pairs kept whole).</summary>
    private static List<int> PseudoTokens(string text, int pieceLength, List<string> vocab)
    {
        var ids = new List<int>();
        void Add(string piece)
        {
            var id = vocab.IndexOf(piece);
            if (id < 0)
            {
                id = vocab.Count;
                vocab.Add(piece);
            }
            ids.Add(id);
        }
        foreach (Match m in TagOrText().Matches(text))
        {
            if (m.Value.StartsWith('<') && m.Value.EndsWith('>'))
            {
                Add(m.Value);
                continue;
            }
            var elements = System.Globalization.StringInfo.GetTextElementEnumerator(m.Value);
            var piece = new StringBuilder();
            var n = 0;
            while (elements.MoveNext())
            {
                piece.Append(elements.GetTextElement());
                if (++n == pieceLength)
                {
                    Add(piece.ToString());
                    piece.Clear();
                    n = 0;
                }
            }
            if (piece.Length > 0)
            {
                Add(piece.ToString());
            }
        }
        return ids;
    }

    [GeneratedRegex("<[^<>\n]*>|[^<]+|<")]
    private static partial Regex TagOrText();

    private static StreamRun Stream(IReadOnlyList<int> generated, IReadOnlyList<int> prompt, Func<IReadOnlyList<int>, string> decode)
    {
        var parser = new StreamingGroundingParser(decode, prompt);
        var run = new StreamRun { PromptText = parser.PromptText };
        run.Entities.AddRange(parser.PromptEntities);
        var step = 0;
        void Take(IEnumerable<GroundingStreamEvent> events)
        {
            foreach (var e in events)
            {
                switch (e)
                {
                    case GroundingCaptionRestarted:
                        run.Restarts++;
                        run.PromptText = string.Empty;
                        run.Text.Clear();
                        run.Entities.Clear();
                        run.EntitySteps.Clear();
                        break;
                    case GroundingTextDelta d:
                        Assert.NotEmpty(d.Text);
                        run.Text.Append(d.Text);
                        break;
                    case GroundingEntityFound f:
                        run.Entities.Add(f.Entity);
                        run.EntitySteps.Add(step);
                        break;
                }
            }
        }
        foreach (var id in generated)
        {
            Take(parser.Push(id));
            step++;
        }
        var done = parser.Complete();
        Take(done.Events);
        run.Final = done.Result;
        return run;
    }

    private sealed class StreamRun
    {
        public string PromptText { get; set; } = "";

        public StringBuilder Text { get; } = new();

        public List<GroundedEntity> Entities { get; } = [];

        public List<int> EntitySteps { get; } = [];

        public int Restarts { get; set; }

        public GroundingResult Final { get; set; } = new("", []);

        public void AssertInvariant(GroundingResult reference, string label = "")
        {
            Assert.True(reference.CleanText == Final.CleanText, $"{label}: final '{Final.CleanText}' vs reference '{reference.CleanText}'");
            GoldenJson.AssertSameEntities(reference.Entities, Final.Entities);
            Assert.True(PromptText + Text == Final.CleanText, $"{label}: streamed '{PromptText}'+'{Text}' vs final '{Final.CleanText}'");
            GoldenJson.AssertSameEntities(Final.Entities, Entities);
        }
    }
}
