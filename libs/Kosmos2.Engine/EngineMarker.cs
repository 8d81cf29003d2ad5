namespace Kosmos2.Engine;

/// <summary>Anchors the assembly for tests that inspect it.</summary>
public static class EngineMarker;
