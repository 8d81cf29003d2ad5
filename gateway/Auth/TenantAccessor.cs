using Grpc.Core;

namespace Kosmos2.Gateway.Auth;

/// <summary>Where <see cref="PublicCallGate"/> leaves the caller's tenant for the handlers.</summary>
public static class TenantAccessor
{
    private static readonly object ItemKey = new();

    /// <summary>
    /// The authenticated tenant of this call. Throws when the call did not pass <see cref="PublicCallGate"/>
    /// (a handler outside the public service): that is a wiring bug, not a client error.
    /// </summary>
    public static Tenant GetTenant(this ServerCallContext context) =>
        TryGetTenant(context) ?? throw new InvalidOperationException(
            $"No tenant on {context.Method}: the {nameof(PublicCallGate)} middleware did not admit this call.");

    /// <summary>The tenant of this call, or null when none was set.</summary>
    public static Tenant? TryGetTenant(this ServerCallContext context) =>
        context.GetHttpContext().Items.TryGetValue(ItemKey, out var value) ? value as Tenant : null;

    internal static void SetTenant(this HttpContext context, Tenant tenant) => context.Items[ItemKey] = tenant;
}
