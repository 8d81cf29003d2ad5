namespace Kosmos2.Contracts.V1;

/// <summary>What the public API requires of an API key, for the gateway that checks it and the tools that pass one on.</summary>
public static class ApiKeyRules
{
    /// <summary>Shortest accepted API key, in characters: a short key can be guessed (16 random characters ≈ 95 bits).</summary>
    public const int MinLength = 16;
}
