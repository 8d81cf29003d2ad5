using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kosmos2.Gateway.Auth;

/// <summary>Registers API-key authentication.</summary>
public static class AuthExtensions
{
    /// <summary>
    /// Binds <see cref="AuthOptions"/>, adds the key store and the startup report, and puts
    /// <see cref="ApiKeyInterceptor"/> on <typeparamref name="TService"/> only (health and reflection stay open).
    /// </summary>
    public static WebApplicationBuilder AddGatewayAuth<TService>(this WebApplicationBuilder builder)
        where TService : class
    {
        builder.Services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.SectionName));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddSingleton<ApiKeyInterceptor>();
        builder.Services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<TService>>(o => o.Interceptors.Add<ApiKeyInterceptor>());
        builder.Services.AddHostedService<AuthStartupReport>();
        return builder;
    }
}
