using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Kosmos2.ServiceDefaults;

/// <summary>
/// Binds every gRPC service as grpc-dotnet does (through the generated <c>BindService</c>), but with request marshallers
/// that turn a message protobuf cannot parse — invalid UTF-8 in a string field (a lone UTF-16 surrogate sent by a
/// JavaScript client), a truncated or garbled body — into INVALID_ARGUMENT. grpc-dotnet parses the request before any
/// interceptor runs and answers such a failure "UNKNOWN: Exception was thrown by handler", which tells the client nothing.
/// </summary>
public static class MalformedRequestGuard
{
    /// <summary>
    /// Replaces grpc-dotnet's default method provider (call after <c>AddGrpc</c>). Every later <c>AddGrpc()</c> would
    /// register the default again, so services set their options with <c>Configure&lt;GrpcServiceOptions&lt;T&gt;&gt;</c>
    /// instead, and <see cref="EnsureActive"/> checks it at start.
    /// </summary>
    public static IServiceCollection AddMalformedRequestGuard(this IServiceCollection services)
    {
        var defaults = services.Where(d => d.ServiceType == typeof(IServiceMethodProvider<>)
                                           && d.ImplementationType?.Name.StartsWith("BinderServiceMethodProvider", StringComparison.Ordinal) == true).ToList();
        if (defaults.Count != 1)
        {
            throw new InvalidOperationException("grpc-dotnet's BinderServiceMethodProvider was not found: call AddGrpc first (or its registration changed).");
        }
        services.Remove(defaults[0]);
        services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(GuardedMethodProvider<>));
        return services;
    }

    /// <summary>Fails at start when grpc-dotnet's default provider came back (another <c>AddGrpc()</c> call).</summary>
    public static void EnsureActive(IServiceProvider services)
    {
        var providers = services.GetServices<IServiceMethodProvider<Grpc.Health.V1.Health.HealthBase>>().Select(p => p.GetType()).ToList();
        if (providers.Any(p => p.Name.StartsWith("BinderServiceMethodProvider", StringComparison.Ordinal)))
        {
            throw new InvalidOperationException(
                "grpc-dotnet's default method provider is registered again (a second AddGrpc() call): malformed requests would answer UNKNOWN " +
                "instead of INVALID_ARGUMENT. Set per-service options with services.Configure<GrpcServiceOptions<T>>(…) instead of AddGrpc().AddServiceOptions<T>(…).");
        }
    }

    /// <summary>The request marshaller with parse failures as INVALID_ARGUMENT naming the message type.</summary>
    internal static Marshaller<T> Guard<T>(Marshaller<T> marshaller) => Marshallers.Create(
        marshaller.ContextualSerializer,
        context =>
        {
            try
            {
                return marshaller.ContextualDeserializer(context);
            }
            catch (Exception ex) when (ex is InvalidProtocolBufferException or System.Text.DecoderFallbackException or ArgumentException)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument,
                    $"The request is not a valid {typeof(T).Name}: {ex.Message} Strings must be valid UTF-8 (no lone surrogates)."));
            }
        });

    private sealed class GuardedMethodProvider<TService> : IServiceMethodProvider<TService> where TService : class
    {
        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
        {
            for (var type = typeof(TService); type is not null; type = type.BaseType)
            {
                if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } bind)
                {
                    // BindService(ServiceBinderBase, TBase), not the older BindService(TBase) overload.
                    var method = bind.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                                     .SingleOrDefault(m => m.Name == bind.BindMethodName && m.GetParameters() is [{ ParameterType: var b }, _] && b == typeof(ServiceBinderBase))
                                 ?? throw new InvalidOperationException($"{bind.BindType}.{bind.BindMethodName}(ServiceBinderBase, …) not found.");
                    method.Invoke(null, [new Binder<TService>(context), null]);
                    return;
                }
            }
        }
    }

    /// <summary>Adds each method the generated code binds, with a guarded request marshaller, invoking <typeparamref name="TService"/>'s override.</summary>
    private sealed class Binder<TService>(ServiceMethodProviderContext<TService> context) : ServiceBinderBase where TService : class
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Guarded(method), Metadata(method, out var implementation),
                Invoker<UnaryServerMethod<TService, TRequest, TResponse>>(implementation));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Guarded(method), Metadata(method, out var implementation),
                Invoker<ServerStreamingServerMethod<TService, TRequest, TResponse>>(implementation));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Guarded(method), Metadata(method, out var implementation),
                Invoker<ClientStreamingServerMethod<TService, TRequest, TResponse>>(implementation));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Guarded(method), Metadata(method, out var implementation),
                Invoker<DuplexStreamingServerMethod<TService, TRequest, TResponse>>(implementation));

        private static Method<TRequest, TResponse> Guarded<TRequest, TResponse>(Method<TRequest, TResponse> method)
            where TRequest : class where TResponse : class =>
            new(method.Type, method.ServiceName, method.Name, Guard(method.RequestMarshaller), method.ResponseMarshaller);

        /// <summary>The service's public method of that name (its override of the generated base), and its attributes.</summary>
        private static List<object> Metadata(IMethod method, out MethodInfo implementation)
        {
            var candidates = typeof(TService).GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.Name == method.Name).ToList();
            implementation = candidates.Count == 1
                ? candidates[0]
                : throw new InvalidOperationException($"{typeof(TService).Name} has {candidates.Count} public methods named {method.Name}; expected one.");
            return [.. typeof(TService).GetCustomAttributes(inherit: true), .. implementation.GetCustomAttributes(inherit: true)];
        }

        private static TDelegate Invoker<TDelegate>(MethodInfo implementation) where TDelegate : Delegate =>
            (TDelegate)Delegate.CreateDelegate(typeof(TDelegate), implementation);
    }
}
