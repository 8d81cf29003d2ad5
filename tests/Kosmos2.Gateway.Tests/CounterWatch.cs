using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Kosmos2.Gateway.Tests;

/// <summary>Records every measurement of one counter of one host (told apart by its meter factory), with its tags.</summary>
public sealed class CounterWatch : IDisposable
{
    private readonly MeterListener _listener;
    private readonly ConcurrentQueue<KeyValuePair<string, object?>[]> _seen = new();

    public CounterWatch(IServiceProvider services, string instrumentName)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == instrumentName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) => _seen.Enqueue(tags.ToArray()));
        _listener.Start();
    }

    /// <summary>The values of two tags of each measurement, in order.</summary>
    public (string, string)[] Seen(string firstTag, string secondTag) =>
        _seen.Select(tags => (Tag(tags, firstTag), Tag(tags, secondTag))).ToArray();

    public void Dispose() => _listener.Dispose();

    private static string Tag(KeyValuePair<string, object?>[] tags, string key) => tags.FirstOrDefault(t => t.Key == key).Value as string ?? "";
}
