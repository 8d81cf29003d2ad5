using System.Globalization;
using System.Text.Json.Nodes;

namespace Kosmos2.Deploy.Tests;

/// <summary>Sessions are data, embeddings are cache: two Redis servers with opposite policies, both behind a password.</summary>
public sealed class RedisManifestTests
{
    public static TheoryData<string> Targets() => ManifestTests.Targets();

    [Theory]
    [MemberData(nameof(Targets))]
    public void The_session_redis_keeps_data_and_the_cache_redis_evicts(string target)
    {
        var manifest = RenderedManifest.For(target);
        var redis = manifest.Workloads.Where(w => w.Name.StartsWith("redis", StringComparison.Ordinal)).ToList();
        if (target.EndsWith("external-redis", StringComparison.Ordinal))
        {
            Assert.Empty(redis);
            Assert.Null(manifest.Find("Service", "redis-sessions"));
            Assert.Null(manifest.Find("Service", "redis-cache"));
            Assert.DoesNotContain(manifest.OfKind("PodDisruptionBudget"), p => RenderedManifest.NameOf(p).StartsWith("redis", StringComparison.Ordinal));
            return;
        }
        Assert.Equal(["redis-cache", "redis-sessions"], redis.Select(w => w.Name).Order(StringComparer.Ordinal));

        var sessions = manifest.Workload("redis-sessions");
        var args = Arguments(sessions);
        Assert.Equal("noeviction", args.GetValueOrDefault("--maxmemory-policy"));
        Assert.Equal("yes", args.GetValueOrDefault("--appendonly"));
        Assert.Equal("everysec", args.GetValueOrDefault("--appendfsync"));
        // The append-only file lives on a claim of the StatefulSet, so it outlives the pod.
        var dataMount = Assert.Single(sessions.MainContainer.Node["volumeMounts"]!.AsArray().OfType<JsonObject>(),
            m => m["mountPath"]!.ToString() == args.GetValueOrDefault("--dir", "/data"));
        Assert.Contains(sessions.Object["spec"]!["volumeClaimTemplates"]?.AsArray() ?? [],
            t => t!["metadata"]!["name"]!.ToString() == dataMount["name"]!.ToString());
        Assert.Single(manifest.OfKind("PodDisruptionBudget"), p => KubeSemantics.Matches(p["spec"]!["selector"], sessions.PodLabels));
        AssertPasswordFromSecret(manifest, sessions, args);
        AssertMemoryLimitAboveMaxmemory(target, sessions, args);

        var cache = manifest.Workload("redis-cache");
        args = Arguments(cache);
        Assert.Equal("allkeys-lru", args.GetValueOrDefault("--maxmemory-policy"));
        Assert.Equal("no", args.GetValueOrDefault("--appendonly"));
        AssertPasswordFromSecret(manifest, cache, args);
        AssertMemoryLimitAboveMaxmemory(target, cache, args);

        // Each service is pointed at its own server.
        Assert.StartsWith("redis-sessions:6379,", manifest.Environment(manifest.Workload("gateway").MainContainer)["Redis__Sessions"], StringComparison.Ordinal);
        Assert.StartsWith("redis-cache:6379,", manifest.Environment(manifest.Workload("vision-worker").MainContainer)["Redis__Cache"], StringComparison.Ordinal);
        Assert.NotNull(manifest.Get("Service", "redis-sessions"));
        Assert.NotNull(manifest.Get("Service", "redis-cache"));
    }

    /// <summary>redis-server's "--name value" arguments.</summary>
    private static Dictionary<string, string> Arguments(Workload redis)
    {
        var args = redis.MainContainer.Node["args"]!.AsArray().Select(a => a!.ToString()).ToList();
        Assert.Equal("redis-server", args[0]);
        var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i + 1 < args.Count; i += 2)
        {
            Assert.StartsWith("--", args[i], StringComparison.Ordinal);
            parsed[args[i]] = args[i + 1];
        }
        return parsed;
    }

    /// <summary>--requirepass is $(VAR) with VAR from the Secret kosmos2-redis, the same one the services read.</summary>
    private static void AssertPasswordFromSecret(RenderedManifest manifest, Workload redis, Dictionary<string, string> args)
    {
        var password = args.GetValueOrDefault("--requirepass") ?? "";
        Assert.Matches(@"^\$\([A-Z_]+\)$", password);
        var env = manifest.Environment(redis.MainContainer);
        Assert.Equal(RenderedManifest.SecretReference("kosmos2-redis", "password"), env.GetValueOrDefault(password[2..^1]));
    }

    /// <summary>The OOM killer must never beat maxmemory: the limit exceeds it.</summary>
    private static void AssertMemoryLimitAboveMaxmemory(string target, Workload redis, Dictionary<string, string> args)
    {
        var maxmemory = args["--maxmemory"];
        Assert.EndsWith("gb", maxmemory, StringComparison.Ordinal);
        var bytes = decimal.Parse(maxmemory[..^2], CultureInfo.InvariantCulture) * 1024 * 1024 * 1024;
        var limit = KubeSemantics.Quantity(redis.MainContainer.Node["resources"]!["limits"]!["memory"]!.ToString());
        Assert.True(limit > bytes, $"{target}: {redis.Name} memory limit {limit} B does not exceed maxmemory {maxmemory}");
    }
}
