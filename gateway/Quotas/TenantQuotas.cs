using System.Collections.Concurrent;
using Kosmos2.Gateway.Auth;
using Kosmos2.Gateway.Generation;

namespace Kosmos2.Gateway.Quotas;

/// <summary>Why a call was refused and when to come back.</summary>
public readonly record struct QuotaRefusal(string Reason, string Message, TimeSpan RetryAfter);

/// <summary>
/// Per-tenant admission against <see cref="TenantQuota"/>: requests per second, streams in flight and tokens per minute.
/// One tenant over its quota gets RESOURCE_EXHAUSTED with a retry hint while every other tenant is served as before.
/// </summary>
public sealed class TenantQuotas(TimeProvider time, GatewayMetrics metrics)
{
    private readonly ConcurrentDictionary<string, Usage> _usage = new(StringComparer.Ordinal);

    /// <summary>Admits one call of <paramref name="tenant"/>; the lease holds its in-flight stream until disposed.</summary>
    public bool TryAdmit(Tenant tenant, out IDisposable? lease, out QuotaRefusal refusal)
    {
        var usage = _usage.GetOrAdd(tenant.Id, _ => new Usage());
        var quota = tenant.Quota;
        var now = time.GetTimestamp();
        lease = null;
        lock (usage)
        {
            if (quota.RequestsPerSecond is { } rate && !usage.TakeRequest(rate, now, time.TimestampFrequency, out var wait))
            {
                refusal = new QuotaRefusal("requests_per_second", $"Tenant '{tenant.Id}' is over its quota of {rate:0.###} requests per second: retry after the hint.", wait);
                return Refused(tenant, refusal);
            }
            if (quota.TokensPerMinute is { } tokens && usage.TokensInLastMinute(now, time.TimestampFrequency) >= tokens)
            {
                refusal = new QuotaRefusal("tokens_per_minute", $"Tenant '{tenant.Id}' used its {tokens:N0} tokens of the last minute: retry after the hint.",
                    usage.UntilOldestTokensExpire(now, time.TimestampFrequency));
                return Refused(tenant, refusal);
            }
            if (quota.MaxInFlight is { } most && usage.InFlight + 1 > most)
            {
                refusal = InFlightRefusal(tenant, most, 1);
                return Refused(tenant, refusal);
            }
            usage.InFlight++;
        }
        metrics.RecordTenantRequest(tenant.Id);
        lease = new InFlightLease(usage, 1);
        refusal = default;
        return true;
    }

    /// <summary>
    /// Takes <paramref name="extra"/> more in-flight streams for a call already admitted (a phrase-grounding call's other
    /// phrases); null when the tenant's budget cannot hold them.
    /// </summary>
    public IDisposable? TryTakeMore(Tenant tenant, int extra, out QuotaRefusal refusal)
    {
        refusal = default;
        if (extra <= 0)
        {
            return new InFlightLease(null, 0);
        }
        var usage = _usage.GetOrAdd(tenant.Id, _ => new Usage());
        lock (usage)
        {
            if (tenant.Quota.MaxInFlight is { } most && usage.InFlight + extra > most)
            {
                refusal = InFlightRefusal(tenant, most, extra + 1);
                Refused(tenant, refusal);
                return null;
            }
            usage.InFlight += extra;
        }
        return new InFlightLease(usage, extra);
    }

    /// <summary>Counts tokens a tenant's generation used (prompt and generated) against its tokens per minute.</summary>
    public void Charge(Tenant tenant, int promptTokens, int generatedTokens)
    {
        var usage = _usage.GetOrAdd(tenant.Id, _ => new Usage());
        lock (usage)
        {
            usage.AddTokens(promptTokens + generatedTokens, time.GetTimestamp(), time.TimestampFrequency);
        }
        metrics.RecordTenantTokens(tenant.Id, promptTokens, generatedTokens);
    }

    private static QuotaRefusal InFlightRefusal(Tenant tenant, int most, int asked) => new("in_flight",
        $"Tenant '{tenant.Id}' may have {most} streams in flight (a phrase-grounding call counts one per phrase); this call needs {asked} more " +
        "than fit now: retry after the hint, or wait for your other calls to finish.", TimeSpan.FromSeconds(1));

    private bool Refused(Tenant tenant, QuotaRefusal refusal)
    {
        metrics.RecordTenantRefusal(tenant.Id, refusal.Reason);
        return false;
    }

    private sealed class InFlightLease(Usage? usage, int count) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (usage is not null && Interlocked.Exchange(ref _released, 1) == 0)
            {
                lock (usage)
                {
                    usage.InFlight -= count;
                }
            }
        }
    }

    /// <summary>One tenant's counters; every member is used under a lock on the instance.</summary>
    private sealed class Usage
    {
        private const int WindowSeconds = 60;

        public int InFlight;

        private double _bucket = double.NaN;
        private long _bucketAt;
        private readonly long[] _tokensPerSecond = new long[WindowSeconds];
        private readonly long[] _secondOf = new long[WindowSeconds];

        /// <summary>Token bucket of capacity max(1, rate), refilled at rate per second.</summary>
        public bool TakeRequest(double rate, long now, long frequency, out TimeSpan wait)
        {
            var capacity = Math.Max(1, rate);
            _bucket = double.IsNaN(_bucket) ? capacity : Math.Min(capacity, _bucket + rate * (now - _bucketAt) / frequency);
            _bucketAt = now;
            if (_bucket >= 1)
            {
                _bucket -= 1;
                wait = default;
                return true;
            }
            wait = TimeSpan.FromSeconds((1 - _bucket) / rate);
            return false;
        }

        public void AddTokens(long tokens, long now, long frequency)
        {
            var second = now / frequency;
            var slot = (int)(second % WindowSeconds);
            if (_secondOf[slot] != second)
            {
                _secondOf[slot] = second;
                _tokensPerSecond[slot] = 0;
            }
            _tokensPerSecond[slot] += tokens;
        }

        public long TokensInLastMinute(long now, long frequency)
        {
            var second = now / frequency;
            long sum = 0;
            for (var i = 0; i < WindowSeconds; i++)
            {
                if (second - _secondOf[i] < WindowSeconds)
                {
                    sum += _tokensPerSecond[i];
                }
            }
            return sum;
        }

        /// <summary>Time until the oldest second still in the window leaves it.</summary>
        public TimeSpan UntilOldestTokensExpire(long now, long frequency)
        {
            var second = now / frequency;
            var oldest = second;
            for (var i = 0; i < WindowSeconds; i++)
            {
                if (second - _secondOf[i] < WindowSeconds && _tokensPerSecond[i] > 0)
                {
                    oldest = Math.Min(oldest, _secondOf[i]);
                }
            }
            return TimeSpan.FromSeconds(Math.Max(1, oldest + WindowSeconds - second));
        }
    }
}
