namespace Kosmos2.Processing.Images;

/// <summary>
/// The image cannot be used; the message says what is wrong and what to send instead. The only exception
/// <see cref="ImageDecoder"/> lets out, so callers map it to one client error (INVALID_ARGUMENT).
/// </summary>
public sealed class InvalidImageException : Exception
{
    public InvalidImageException()
    {
    }

    public InvalidImageException(string message)
        : base(message)
    {
    }

    public InvalidImageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
