namespace Kosmos2.Gateway.Routing;

/// <summary>One call's share of an <see cref="InFlightCounter"/>; released exactly once.</summary>
internal sealed class InFlightLease
{
    private readonly InFlightCounter _counter;
    private int _released;

    public InFlightLease(InFlightCounter counter)
    {
        _counter = counter;
        counter.Increment();
    }

    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _counter.Decrement();
        }
    }
}
