namespace Kosmos2.Engine.Tests;

/// <summary>Records one request's events (thread-safe) and notes any that break the sink contract.</summary>
public sealed class RecordingSink : IRequestSink
{
    private readonly Lock _lock = new();
    private readonly List<int> _tokens = [];
    private readonly List<GenerationResult> _results = [];
    private int _violations;

    public IReadOnlyList<int> Tokens
    {
        get
        {
            lock (_lock)
            {
                return [.. _tokens];
            }
        }
    }

    public IReadOnlyList<GenerationResult> Results
    {
        get
        {
            lock (_lock)
            {
                return [.. _results];
            }
        }
    }

    /// <summary>The single final result; fails when there is none or more than one.</summary>
    public GenerationResult Final => Assert.Single(Results);

    public bool IsFinished
    {
        get
        {
            lock (_lock)
            {
                return _results.Count > 0;
            }
        }
    }

    /// <summary>Tokens after the final event, or a second final event.</summary>
    public int ContractViolations => Volatile.Read(ref _violations);

    public int EventCount
    {
        get
        {
            lock (_lock)
            {
                return _tokens.Count + _results.Count;
            }
        }
    }

    public void OnToken(int tokenId)
    {
        lock (_lock)
        {
            if (_results.Count > 0)
            {
                _violations++;
            }
            _tokens.Add(tokenId);
        }
    }

    public void OnFinished(GenerationResult result)
    {
        lock (_lock)
        {
            if (_results.Count > 0)
            {
                _violations++;
            }
            _results.Add(result);
        }
    }
}
