using Kosmos2.Gateway.Quotas;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kosmos2.Gateway.Auth;

/// <summary>Registers API-key authentication, tenants' cache namespaces and quotas.</summary>
public static class AuthExtensions
{
    /// <summary>Binds <see cref="AuthOptions"/> and adds the key store, the tenants' salts and quotas, and the startup report.</summary>
    public static WebApplicationBuilder AddGatewayAuth(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.SectionName));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<TenantCacheSalts>();
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddSingleton<TenantQuotas>();
        builder.Services.AddHostedService<AuthStartupReport>();
        return builder;
    }

    /// <summary>Admits every call of the public service on its headers (<see cref="PublicCallGate"/>) before its body is read.</summary>
    public static WebApplication UseGatewayAuth(this WebApplication app)
    {
        app.UseMiddleware<PublicCallGate>();
        return app;
    }
}
