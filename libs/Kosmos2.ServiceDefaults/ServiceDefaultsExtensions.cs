using System.Net;
using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Kosmos2.ServiceDefaults;

/// <summary>What every Kosmos2 service shares: Kestrel on HTTP/2, gRPC with health and reflection,
/// OpenTelemetry traces/metrics/logs, structured console logs.</summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>Prefix of every ActivitySource and Meter of this project; all are exported.</summary>
    public const string TelemetryPrefix = "Kosmos2.";

    /// <summary>Version of the running service (informational version of the entry assembly).</summary>
    public static string ServiceVersion { get; } =
        Assembly.GetEntryAssembly()?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>Configures Kestrel, gRPC, health, reflection, logging and OpenTelemetry for <paramref name="serviceName"/>.</summary>
    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder, string serviceName)
    {
        var options = builder.Configuration.GetSection(ServiceOptions.SectionName).Get<ServiceOptions>() ?? new ServiceOptions();
        builder.Services.Configure<ServiceOptions>(builder.Configuration.GetSection(ServiceOptions.SectionName));

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.Limits.MaxConcurrentUpgradedConnections = options.MaxConnections;
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxStreamsPerConnection;
            kestrel.Limits.MaxRequestHeadersTotalSize = options.MaxRequestHeaderBytes;
            kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(options.KeepAlivePingSeconds);
            kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(options.KeepAlivePingTimeoutSeconds);
            var address = IPAddress.Parse(options.Host);
            // Plain HTTP/2 (h2c with prior knowledge): gRPC between pods and on loopback needs no TLS or ALPN.
            kestrel.Listen(address, options.Port, listen => listen.Protocols = HttpProtocols.Http2);
            if (options.HttpPort > 0)
            {
                // Browsers and curl: HTTP/1.1. Without TLS Kestrel cannot offer HTTP/2 beside it (no ALPN; it warns and
                // serves HTTP/1.1 anyway); HTTP/2 clients reach the same routes on the gRPC port (prior knowledge) or
                // through a TLS-terminating Ingress.
                kestrel.Listen(address, options.HttpPort, listen => listen.Protocols = HttpProtocols.Http1);
            }
            if (options.MetricsPort > 0)
            {
                // Prometheus scrapes over HTTP/1.1, which an HTTP/2-only endpoint cannot serve.
                kestrel.Listen(address, options.MetricsPort, listen => listen.Protocols = HttpProtocols.Http1);
            }
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds));

        builder.Services.AddGrpc(grpc => grpc.Interceptors.Add<ErrorInterceptor>());
        builder.Services.AddMalformedRequestGuard();
        builder.Services.AddGrpcReflection();
        builder.Services.AddSingleton<ReadinessGate>();
        builder.Services.AddGrpcHealthChecks(health =>
        {
            // Empty service name = the whole server, what Kubernetes' grpc probe asks.
            health.Services.Map("", _ => true);
        }).AddCheck<ReadinessGate>("ready");

        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(json =>
        {
            json.UseUtcTimestamp = true;
            json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            json.IncludeScopes = true;
        });
        builder.Logging.AddOpenTelemetry(otel =>
        {
            otel.IncludeFormattedMessage = true;
            otel.IncludeScopes = true;
        });

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName, serviceVersion: ServiceVersion))
            .WithTracing(tracing => tracing
                .AddSource(TelemetryPrefix + "*")
                .AddAspNetCoreInstrumentation(aspnet => aspnet.Filter = ctx => !ctx.Request.Path.StartsWithSegments("/grpc.health.v1.Health"))
                .AddGrpcClientInstrumentation())
            .WithMetrics(metrics => metrics
                .AddMeter(TelemetryPrefix + "*")
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter());
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry.UseOtlpExporter();
        }
        return builder;
    }

    /// <summary>Maps health, reflection (when <see cref="ServiceOptions.EnableReflection"/>) and the metrics endpoint.</summary>
    public static WebApplication MapServiceDefaults(this WebApplication app)
    {
        MalformedRequestGuard.EnsureActive(app.Services);
        app.MapGrpcHealthChecksService();
        var options = app.Configuration.GetSection(ServiceOptions.SectionName).Get<ServiceOptions>() ?? new ServiceOptions();
        if (options.EnableReflection)
        {
            app.MapGrpcReflectionService();
        }
        if (options.MetricsPort > 0)
        {
            // Only on the metrics port, told by the connection's local port: a Host header (RequireHost) is the
            // caller's to write, so "Host: x:9464" sent to the public port would reach /metrics.
            var metricsPort = options.MetricsPort;
            app.Use(async (context, next) =>
            {
                if (context.Connection.LocalPort != metricsPort && context.Request.Path.StartsWithSegments("/metrics"))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return;
                }
                await next(context);
            });
            app.MapPrometheusScrapingEndpoint();
        }
        return app;
    }
}
