namespace Kosmos2.Processing.Prompts;

/// <summary>The prompt or its boxes cannot be turned into model input; the message says what to change.</summary>
public sealed class InvalidPromptException : ArgumentException
{
    public InvalidPromptException()
    {
    }

    public InvalidPromptException(string message)
        : base(message)
    {
    }

    public InvalidPromptException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
