using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Kosmos2.Contracts.Internal.V1;
using Kosmos2.Contracts.V1;

namespace Kosmos2.Integration.Tests;

/// <summary>The three services start as they really run and answer health, reflection and info over HTTP/2.</summary>
public sealed class ServicesStartTests
{
    public static TheoryData<string, string, string> Services => new()
    {
        { "gateway", "Kosmos2.Gateway", "kosmos2.v1.Kosmos2" },
        { "vision-worker", "Kosmos2.VisionWorker", "kosmos2.internal.v1.VisionWorker" },
        { "decoder-worker", "Kosmos2.DecoderWorker", "kosmos2.internal.v1.DecoderWorker" },
    };

    /// <summary>The workers need a checkpoint: the golden one is tiny and loads in well under a second.</summary>
    private static Dictionary<string, string> GoldenModelEnvironment => new()
    {
        ["Vision__ModelDir"] = RepoPaths.GoldenModelDir,
        ["Decoder__ModelDir"] = RepoPaths.GoldenModelDir,
    };

    [Theory]
    [MemberData(nameof(Services))]
    public async Task Service_reports_serving_and_lists_its_services_through_reflection_when_enabled(string folder, string assembly, string apiService)
    {
        await using var service = ServiceProcess.Start(folder, RepoPaths.BuiltAssembly(folder, assembly),
            new Dictionary<string, string>(GoldenModelEnvironment) { ["Service__EnableReflection"] = "true" });
        await service.WaitHealthyAsync(TimeSpan.FromSeconds(60));

        var health = await new Health.HealthClient(service.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var listed = await ListServicesAsync(service);
        Assert.Contains(apiService, listed);
        Assert.Contains("grpc.health.v1.Health", listed);
        Assert.Contains("grpc.reflection.v1alpha.ServerReflection", listed);

        Assert.Equal(0, await service.StopAsync(TimeSpan.FromSeconds(20)));
    }

    [Theory]
    [MemberData(nameof(Services))]
    public async Task Reflection_is_off_by_default(string folder, string assembly, string apiService)
    {
        await using var service = ServiceProcess.Start(folder, RepoPaths.BuiltAssembly(folder, assembly), GoldenModelEnvironment);
        await service.WaitHealthyAsync(TimeSpan.FromSeconds(60));

        var ex = await Assert.ThrowsAsync<RpcException>(() => ListServicesAsync(service));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.NotEmpty(apiService);
    }

    [Fact]
    public async Task Each_service_answers_its_info_call()
    {
        await using var gateway = ServiceProcess.Start("gateway", RepoPaths.BuiltAssembly("gateway", "Kosmos2.Gateway"),
            new Dictionary<string, string> { ["Gateway__ModelId"] = "test/model" });
        await using var vision = ServiceProcess.Start("vision-worker", RepoPaths.BuiltAssembly("vision-worker", "Kosmos2.VisionWorker"), GoldenModelEnvironment);
        await using var decoder = ServiceProcess.Start("decoder-worker", RepoPaths.BuiltAssembly("decoder-worker", "Kosmos2.DecoderWorker"),
            new Dictionary<string, string>(GoldenModelEnvironment) { ["Decoder__MaxRunning"] = "7" });
        await Task.WhenAll(
            gateway.WaitHealthyAsync(TimeSpan.FromSeconds(60)),
            vision.WaitHealthyAsync(TimeSpan.FromSeconds(60)),
            decoder.WaitHealthyAsync(TimeSpan.FromSeconds(60)));

        var serverInfo = await new Contracts.V1.Kosmos2.Kosmos2Client(gateway.Channel).GetInfoAsync(new GetInfoRequest());
        Assert.Equal("test/model", serverInfo.ModelId);
        Assert.Contains(TaskKind.Vqa, serverInfo.Tasks);
        Assert.True(serverInfo.Limits.MaxNewTokens > 0);

        var visionInfo = await new VisionWorker.VisionWorkerClient(vision.Channel).GetInfoAsync(new VisionInfoRequest());
        Assert.True(visionInfo.MaxBatch > 0);
        Assert.True(visionInfo.Ready);
        Assert.Equal(new uint[] { 64, 64 }, visionInfo.EmbeddingShape);

        var decoderInfo = await new DecoderWorker.DecoderWorkerClient(decoder.Channel).GetInfoAsync(new DecoderInfoRequest());
        Assert.Equal(7u, decoderInfo.MaxRunning);
    }

    private static async Task<List<string>> ListServicesAsync(ServiceProcess service)
    {
        var reflection = new ServerReflection.ServerReflectionClient(service.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        return call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
    }
}
