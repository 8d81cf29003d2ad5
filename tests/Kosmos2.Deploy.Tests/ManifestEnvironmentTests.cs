using System.Net;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Kosmos2.Contracts.V1;
using Kosmos2.Testing;
using Xunit.Sdk;

namespace Kosmos2.Deploy.Tests;

/// <summary>
/// The services read every setting the manifests pass them (ports, worker addresses, Redis, model path, keys file,
/// internal secret, OTLP): each service is started as a process with exactly the environment the base manifests give its container,
/// only the addresses and paths that point into the cluster moved to this machine (<see cref="LoopbackEnvironment"/>),
/// and must come up healthy and serve. A setting a service ignores or misreads shows up here, not in a cluster.
/// </summary>
public sealed class ManifestEnvironmentTests
{
    private const string ApiKey = "deploy-test-key-0123456789";

    private static readonly string[] Services = ["vision-worker", "decoder-worker", "gateway"];

    private static readonly Dictionary<string, (string Folder, string Assembly)> Builds = new(StringComparer.Ordinal)
    {
        ["gateway"] = ("gateway", "Kosmos2.Gateway"),
        ["vision-worker"] = ("vision-worker", "Kosmos2.VisionWorker"),
        ["decoder-worker"] = ("decoder-worker", "Kosmos2.DecoderWorker"),
    };

    [Fact]
    public void The_loopback_rewrite_moves_only_cluster_addresses_and_refuses_address_like_settings_it_does_not_know()
    {
        var local = new LocalEndpoints(
            new Dictionary<string, int> { ["gateway"] = 1001, ["vision-worker"] = 1002, ["decoder-worker"] = 1003 },
            new Dictionary<string, int> { ["gateway"] = 2001, ["vision-worker"] = 2002, ["decoder-worker"] = 2003 },
            RedisPort: 3000, RedisPassword: "local-secret", ModelDir: "/golden/model", ApiKeysFile: "/tmp/keys.json", GatewayHttpPort: 4001,
            InternalSecretFile: "/tmp/internal-secret");
        var manifest = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Service__Host"] = "0.0.0.0",
            ["Service__Port"] = "50051",
            ["Service__MetricsPort"] = "9464",
            ["Service__HttpPort"] = "8080",
            ["Redis__Sessions"] = "redis-sessions:6379,abortConnect=false,ssl=true",
            ["Redis__Password"] = RenderedManifest.SecretReference("kosmos2-redis", "password"),
            ["Gateway__VisionWorkers"] = "dns:///vision-worker:50052",
            ["Gateway__TokenizerDir"] = ManifestTests.ModelPath,
            ["Auth__ApiKeysFile"] = "/etc/kosmos2/api-keys/keys.json",
            ["Internal__SecretFile"] = "/etc/kosmos2/internal/secret",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "",
            ["Service__ShutdownTimeoutSeconds"] = "180",
            ["Decoder__DType"] = "bfloat16",
            // Unknown to the rewrite and pointing somewhere: each must be reported.
            ["Gateway__CacheDir"] = "/var/cache/kosmos2",
            ["Tracing__Collector"] = "otel-collector:4317",
            ["Gateway__Upstream"] = "http://somewhere.example.com",
            ["Gateway__BindAddress"] = "10.0.0.1",
            ["Gateway__DecoderWorkers"] = "dns:///decoder-worker:9999",
            // Unknown but empty (off) or plainly not a place: passed as given.
            ["Gateway__SpareDir"] = "",
            ["Gateway__MaxNewTokens"] = "512",
        };

        var (environment, problems) = LoopbackEnvironment.Rewrite("gateway", manifest, local);

        Assert.Equal("127.0.0.1", environment["Service__Host"]);
        Assert.Equal("1001", environment["Service__Port"]);
        Assert.Equal("2001", environment["Service__MetricsPort"]);
        Assert.Equal("4001", environment["Service__HttpPort"]);
        Assert.Equal("127.0.0.1:3000,abortConnect=false,ssl=true", environment["Redis__Sessions"]);
        Assert.Equal("local-secret", environment["Redis__Password"]);
        Assert.Equal("dns:///localhost:1002", environment["Gateway__VisionWorkers"]);
        Assert.Equal("/golden/model", environment["Gateway__TokenizerDir"]);
        Assert.Equal("/tmp/keys.json", environment["Auth__ApiKeysFile"]);
        Assert.Equal("/tmp/internal-secret", environment["Internal__SecretFile"]);
        Assert.Equal("", environment["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        Assert.Equal("180", environment["Service__ShutdownTimeoutSeconds"]);
        Assert.Equal(manifest.Keys.Order(StringComparer.Ordinal), environment.Keys.Order(StringComparer.Ordinal));
        foreach (var key in new[] { "Gateway__CacheDir", "Tracing__Collector", "Gateway__Upstream", "Gateway__BindAddress", "Gateway__DecoderWorkers" })
        {
            Assert.Contains(problems, p => p.Contains(key, StringComparison.Ordinal));
        }
        Assert.Equal(5, problems.Count);
    }

    [Fact]
    public async Task Each_service_started_with_exactly_its_base_manifest_environment_comes_up_healthy_and_serves()
    {
        var manifest = RenderedManifest.For("base");
        var keysDir = Directory.CreateTempSubdirectory("kosmos2-deploy-keys-");
        // With a password, as the manifests' Redis servers: the services must send the one Redis__Password gives them.
        await using var redis = await RedisServer.StartAsync(persistent: false, password: "deploy-test-redis-password");
        var started = new List<ServiceProcess>();
        try
        {
            var keysFile = Path.Combine(keysDir.FullName, "keys.json");
            await File.WriteAllTextAsync(keysFile, JsonSerializer.Serialize(new[] { new { key = ApiKey, tenant = "deploy-tests" } }));
            // As kubectl create secret --from-literal writes it: the value alone, no newline.
            var internalSecretFile = Path.Combine(keysDir.FullName, "internal-secret");
            await File.WriteAllTextAsync(internalSecretFile, ClusterEnvironment.NewSecret());
            var local = new LocalEndpoints(
                Services.ToDictionary(s => s, _ => FreePort.Next(), StringComparer.Ordinal),
                Services.ToDictionary(s => s, _ => FreePort.Next(), StringComparer.Ordinal),
                redis.Port, redis.Password!, RepoPaths.GoldenModelDir, keysFile, FreePort.Next(), internalSecretFile);

            var environments = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
            var problems = new List<string>();
            foreach (var service in Services)
            {
                var given = manifest.Environment(manifest.Workload(service).MainContainer);
                var (environment, found) = LoopbackEnvironment.Rewrite(service, given, local);
                problems.AddRange(found);
                environments[service] = environment;
            }
            Assert.True(problems.Count == 0, "The base manifests pass settings the loopback rewrite does not know:\n" + string.Join('\n', problems));
            // The settings these checks rely on are among what the manifests pass (not defaults of the services).
            var gatewayEnvironment = environments["gateway"];
            Assert.True(gatewayEnvironment.GetValueOrDefault("Gateway__TokenizerDir") == RepoPaths.GoldenModelDir, "base: the gateway is not given the model folder as Gateway__TokenizerDir");
            Assert.True(gatewayEnvironment.GetValueOrDefault("Auth__ApiKeysFile") == keysFile, "base: the gateway is not given Auth__ApiKeysFile");
            foreach (var service in Services)
            {
                Assert.True(environments[service].GetValueOrDefault("Internal__SecretFile") == internalSecretFile, $"base: {service} is not given Internal__SecretFile");
            }
            foreach (var pool in new[] { "Gateway__VisionWorkers", "Gateway__DecoderWorkers" })
            {
                Assert.True(gatewayEnvironment.GetValueOrDefault(pool, "").StartsWith("dns:///localhost:", StringComparison.Ordinal), $"base: the gateway is not given {pool}");
            }

            foreach (var service in Services)
            {
                var (folder, assembly) = Builds[service];
                started.Add(ServiceProcess.StartWithExactEnvironment(service, RepoPaths.BuiltAssembly(folder, assembly), environments[service]));
            }
            await Task.WhenAll(started.Select(s => WaitServingAsync(s, TimeSpan.FromSeconds(180))));
            var gateway = started.Single(s => s.Name == "gateway");
            var client = new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel);
            var withKey = new Metadata { { "authorization", "Bearer " + ApiKey } };

            // dns:///localhost:PORT gives one worker per address localhost resolves to (one on a usual host, as one
            // ready pod behind a headless Service gives one A record).
            var expectedWorkers = (uint)(await Dns.GetHostAddressesAsync("localhost")).Length;
            ServerInfo info = new();
            await Poll.UntilAsync(async () =>
            {
                info = await client.GetInfoAsync(new GetInfoRequest(), withKey, deadline: DateTime.UtcNow.AddSeconds(5));
                return info.VisionWorkers > 0 && info.DecoderWorkers > 0;
            }, TimeSpan.FromSeconds(30), "the gateway's GetInfo to report its workers");
            Assert.Equal(expectedWorkers, info.VisionWorkers);
            Assert.Equal(expectedWorkers, info.DecoderWorkers);

            var request = new GenerateRequest
            {
                Image = new Image { Data = ByteString.CopyFrom(TestImages.RandomPng(64, 48, seed: 4242)) },
                Task = TaskKind.BriefCaption,
                Stopping = new StoppingParameters { MaxNewTokens = 3 },
            };
            GenerateResult? result = null;
            using (var call = client.Generate(request, withKey, deadline: DateTime.UtcNow.AddMinutes(2)))
            {
                await foreach (var message in call.ResponseStream.ReadAllAsync())
                {
                    if (message.EventCase == GenerateResponse.EventOneofCase.Result)
                    {
                        result = message.Result;
                    }
                }
            }
            Assert.True(result is not null, "Generate ended without a final result.\n" + Output(started));
            Assert.InRange(result.Usage.GeneratedTokens, 1u, 3u);
            Assert.NotEqual(FinishReason.Unspecified, result.FinishReason);

            // Redis__Cache and Redis__Sessions (with Redis__Password) reached their users: the vision worker cached the
            // image's embeddings, and the gateway stores a chat session there (an in-memory store would leave the key
            // count unchanged).
            var cached = 0L;
            await Poll.UntilAsync(async () => (cached = await redis.DbSizeAsync()) > 0, TimeSpan.FromSeconds(10), "the vision worker to cache embeddings in Redis");
            await client.CreateSessionAsync(new CreateSessionRequest { Image = request.Image }, withKey, deadline: DateTime.UtcNow.AddMinutes(1));
            Assert.True(await redis.DbSizeAsync() > cached, "The gateway's chat session did not reach the test's Redis.");

            // The workers require the secret the gateway just sent them: a caller without it gets nothing.
            var vision = new Contracts.Internal.V1.VisionWorker.VisionWorkerClient(started.Single(s => s.Name == "vision-worker").Channel);
            var direct = await Assert.ThrowsAsync<RpcException>(() => vision.EncodeAsync(new Contracts.Internal.V1.EncodeRequest { Image = request.Image.Data }).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, direct.StatusCode);
            var decoder = new Contracts.Internal.V1.DecoderWorker.DecoderWorkerClient(started.Single(s => s.Name == "decoder-worker").Channel);
            direct = await Assert.ThrowsAsync<RpcException>(() => decoder.GetInfoAsync(new Contracts.Internal.V1.DecoderInfoRequest()).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, direct.StatusCode);

            using (var anonymous = client.Generate(request, deadline: DateTime.UtcNow.AddSeconds(30)))
            {
                var refused = await Assert.ThrowsAsync<RpcException>(() => anonymous.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
            }

            // Prometheus scrapes the metrics port with plain HTTP/1.1 (no prior-knowledge HTTP/2).
            using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
            // Service__HttpPort reached the gateway: the web page and the JSON API (with the key) over HTTP/1.1.
            using (var page = await http.GetAsync($"http://127.0.0.1:{local.GatewayHttpPort}/"))
            {
                Assert.True(page.IsSuccessStatusCode, $"the gateway's web page: {page.StatusCode}");
            }
            using (var info11 = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{local.GatewayHttpPort}/v1/info"))
            {
                info11.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ApiKey);
                using var answer = await http.SendAsync(info11);
                Assert.True(answer.IsSuccessStatusCode, $"GET /v1/info over HTTP: {answer.StatusCode}");
            }
            foreach (var service in Services)
            {
                var url = $"http://127.0.0.1:{local.MetricsPorts[service]}/metrics";
                var text = "";
                await Poll.UntilAsync(async () =>
                {
                    using var response = await http.GetAsync(url);
                    Assert.Equal(HttpVersion.Version11, response.Version);
                    text = response.IsSuccessStatusCode ? await response.Content.ReadAsStringAsync() : "";
                    return text.Contains("# TYPE ", StringComparison.Ordinal);
                }, TimeSpan.FromSeconds(30), $"{service} to serve Prometheus metrics at {url}");
            }
        }
        finally
        {
            foreach (var service in started)
            {
                await service.DisposeAsync();
            }
            keysDir.Delete(recursive: true);
        }
    }

    /// <summary>Like <see cref="ServiceProcess.WaitHealthyAsync"/>, but fails at once when the process exits: a setting
    /// a service rejects at startup (exit code 1) should not cost the whole startup allowance.</summary>
    private static async Task WaitServingAsync(ServiceProcess service, TimeSpan timeout)
    {
        var health = new Health.HealthClient(service.Channel);
        var deadline = DateTime.UtcNow + timeout;
        var last = "no answer yet";
        while (DateTime.UtcNow < deadline)
        {
            if (service.HasExited)
            {
                throw new XunitException($"{service.Name} exited before reporting SERVING.\n--- {service.Name} output ---\n{service.RecentOutput}");
            }
            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }
                last = reply.Status.ToString();
            }
            catch (RpcException ex)
            {
                last = ex.Status.ToString();
            }
            await Task.Delay(100);
        }
        throw new XunitException($"{service.Name} did not report SERVING within {timeout.TotalSeconds:0} s (last: {last}).\n--- {service.Name} output ---\n{service.RecentOutput}");
    }

    private static string Output(IEnumerable<ServiceProcess> services) =>
        string.Join('\n', services.Select(s => $"--- {s.Name} ---\n{s.RecentOutput}"));
}
