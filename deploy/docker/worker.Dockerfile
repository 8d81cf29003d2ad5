# syntax=docker/dockerfile:1
# Worker image (vision-worker or decoder-worker), CPU or CUDA. Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile --build-arg SERVICE=vision-worker  --build-arg BACKEND=cpu  -t kosmos2/vision-worker:0.1.0-cpu .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg SERVICE=decoder-worker --build-arg BACKEND=cpu  -t kosmos2/decoder-worker:0.1.0-cpu .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg SERVICE=vision-worker  --build-arg BACKEND=cuda -t kosmos2/vision-worker:0.1.0-cuda .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg SERVICE=decoder-worker --build-arg BACKEND=cuda -t kosmos2/decoder-worker:0.1.0-cuda .
# BACKEND becomes -p:TorchBackend, which picks the libtorch native package (Directory.Build.targets):
# cpu -> libtorch-cpu-linux-x64 (~0.7 GB), cuda -> libtorch-cuda-12.8-linux-x64 (several GB; it must be served
# by the NuGet feed the build uses). Directory.Build.targets also patches libLibTorchSharp.so after Publish.

# Declared before the first FROM so the final stage can be chosen by name (runtime-cpu / runtime-cuda).
ARG BACKEND=cpu

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG SERVICE
ARG BACKEND
WORKDIR /src
# gcc: libs/Kosmos2.Kernels compiles its C kernels (libk2kernels.so, glibc only) during the build.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,id=nuget,target=/root/.nuget/packages \
    case "$SERVICE" in \
      vision-worker)  project=vision-worker/Kosmos2.VisionWorker.csproj ;; \
      decoder-worker) project=decoder-worker/Kosmos2.DecoderWorker.csproj ;; \
      *) echo "SERVICE must be vision-worker or decoder-worker (got '$SERVICE')" >&2; exit 1 ;; \
    esac && \
    case "$BACKEND" in cpu|cuda) ;; *) echo "BACKEND must be cpu or cuda (got '$BACKEND')" >&2; exit 1 ;; esac && \
    dotnet publish "$project" \
      -c Release -r linux-x64 --self-contained false -p:UseAppHost=false \
      -p:TorchBackend="$BACKEND" \
      -o /app

# CPU: the ASP.NET Core runtime image is all the workers need besides what the publish folder carries.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime-cpu

# CUDA: the NVIDIA runtime base (driver libraries come from the node through the NVIDIA container toolkit) plus
# the .NET runtime, copied from the official image. Both are Ubuntu 24.04, so the binaries match; the packages are
# what the .NET runtime-deps image installs (no ICU: the projects use InvariantGlobalization).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS runtime-cuda
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libc6 libgcc-s1 libssl3t64 libstdc++6 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1654 app \
 && useradd --uid 1654 --gid 1654 --no-create-home --shell /usr/sbin/nologin app
COPY --from=mcr.microsoft.com/dotnet/aspnet:10.0 /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_RUNNING_IN_CONTAINER=true \
    APP_UID=1654

FROM runtime-${BACKEND} AS runtime
ARG SERVICE
WORKDIR /app
COPY --from=build /app ./
# The entry assembly (Kosmos2.VisionWorker.dll or Kosmos2.DecoderWorker.dll), fixed at build time.
RUN case "$SERVICE" in \
      vision-worker)  echo Kosmos2.VisionWorker.dll ;; \
      decoder-worker) echo Kosmos2.DecoderWorker.dll ;; \
    esac > /app/entry-assembly && test -f "/app/$(cat /app/entry-assembly)"
ENV ASPNETCORE_HTTP_PORTS= \
    Service__Host=0.0.0.0 \
    Service__MetricsPort=9464
EXPOSE 50052 50053 9464
# 1654 = the non-root "app" user of the .NET images (created above for CUDA); numeric for runAsNonRoot.
USER 1654
# exec: dotnet becomes PID 1 and receives SIGTERM directly, so the graceful drain (Service__ShutdownTimeoutSeconds)
# runs on pod termination.
ENTRYPOINT ["/bin/sh", "-c", "exec dotnet \"/app/$(cat /app/entry-assembly)\" \"$@\"", "--"]
