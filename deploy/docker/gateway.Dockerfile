# syntax=docker/dockerfile:1
# Gateway image. Build from the repository root (the context needs libs/, protos/ and the Directory.* files):
#   docker build -f deploy/docker/gateway.Dockerfile -t kosmos2/gateway:0.1.0 .
# The gateway has no TorchSharp (its csproj fails the build if one sneaks in), so the runtime is the plain
# ASP.NET Core image (~230 MB) and the pod is ready in seconds.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
# The NuGet cache is a BuildKit cache mount: re-builds after a code change do not download packages again,
# and the packages never end up in an image layer.
RUN --mount=type=cache,id=nuget,target=/root/.nuget/packages \
    dotnet publish gateway/Kosmos2.Gateway.csproj \
      -c Release -r linux-x64 --self-contained false -p:UseAppHost=false \
      -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
# Files stay owned by root and are only readable by the service user: a compromised process cannot rewrite them
# (the pods also run with readOnlyRootFilesystem).
COPY --from=build /app ./
# Ports come from Service__Port / Service__MetricsPort; clear the image's default ASPNETCORE_HTTP_PORTS=8080 so
# Kestrel does not warn about an overridden address.
ENV ASPNETCORE_HTTP_PORTS= \
    Service__Host=0.0.0.0 \
    Service__Port=50051 \
    Service__MetricsPort=9464
EXPOSE 50051 9464
# 1654 = the non-root "app" user the .NET images ship ($APP_UID); numeric so Kubernetes' runAsNonRoot can check it.
USER 1654
ENTRYPOINT ["dotnet", "/app/Kosmos2.Gateway.dll"]
