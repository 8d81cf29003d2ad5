namespace Kosmos2.Gateway;

/// <summary>Registers the gateway's services.</summary>
public static class GatewayExtensions
{
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<GatewayOptions>(builder.Configuration.GetSection(GatewayOptions.SectionName));
        builder.Services.AddHostedService<GatewayStartup>();
        return builder;
    }
}
