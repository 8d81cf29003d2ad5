using System.Buffers.Text;
using System.Security.Cryptography;

namespace Kosmos2.Gateway.Sessions;

/// <summary>Session ids: 128 random bits, base64url without padding (22 characters), unguessable.</summary>
public static class SessionIds
{
    public const int Length = 22;

    public static string New()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>True for a string that can be an id; anything else is answered as not found without a lookup.</summary>
    public static bool IsWellFormed(string? id) =>
        id is { Length: Length } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
