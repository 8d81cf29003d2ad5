namespace Kosmos2.Processing.Prompts;

/// <summary>
/// The question-and-answer prompts: VQA as the paper asks (<c>Question: {q} Answer:</c>, KOSMOS2_SPEC.md §8), and the
/// chat format built on it. A session's context starts as <c>&lt;s&gt;&lt;image&gt;…&lt;/image&gt;</c>; turn 1 appends the
/// ids of <c>[&lt;grounding&gt;]Question: {q} Answer:</c>, later turns <c> Question: {q} Answer:</c>; each answer's ids
/// are appended as generated, without a final <c>&lt;/s&gt;</c>. Nothing is re-tokenised: a turn's prompt is the stored
/// ids + the new question's ids.
/// </summary>
public static class QuestionPrompt
{
    /// <summary><c>Question: {question} Answer:</c>.</summary>
    public static string Vqa(string question) => $"Question: {question} Answer:";

    /// <summary>The text a chat turn appends to its session's context (<paramref name="question"/> with its boxes already inserted).</summary>
    public static string ChatTurn(string question, bool firstTurn, bool grounding) =>
        (firstTurn ? (grounding ? "<grounding>" : "") : " ") + Vqa(question);

    /// <summary>The answer's ids as the context keeps them: the generated ids without a final <c>&lt;/s&gt;</c>.</summary>
    public static IReadOnlyList<int> AnswerIds(IReadOnlyList<int> generated, int eosId) =>
        generated.Count > 0 && generated[^1] == eosId ? generated.Take(generated.Count - 1).ToList() : generated.ToList();

    /// <summary>The answer's text: the clean text after the prompt's own (the question), trimmed.</summary>
    public static string AnswerText(string cleanText, string promptText) =>
        cleanText.StartsWith(promptText, StringComparison.Ordinal) ? cleanText[promptText.Length..].Trim() : cleanText;
}
