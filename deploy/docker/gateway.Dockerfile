# syntax=docker/dockerfile:1
# Gateway image. Build from the repository root (the context needs libs/, protos/ and the Directory.* files):
#   docker build -f deploy/docker/gateway.Dockerfile --build-arg MODEL_REVISION=<40-hex sha> -t REGISTRY/kosmos2/gateway:0.1.0 .
# The gateway has no TorchSharp (its csproj fails the build if one sneaks in), so the runtime is the plain
# ASP.NET Core image (~230 MB) and the pod is ready in seconds.
#
# The tokenizer (sentencepiece.bpe.model and the JSONs, a few MB) is baked in at /app/tokenizer
# (Gateway__TokenizerDir), so the gateway needs no model volume. MODEL_REVISION must be the commit the model volume
# holds (MODEL_REVISION in deploy/k8s/base/config/model.env): the gateway's token ids must be the decoder's.
# Without Hub access at build time, give the folder yourself (same revision!):
#   docker build ... --build-context tokenizer=/path/to/kosmos-2-patch14-224 .
# (a named build context replaces the "tokenizer" stage below).

# Downloads only the tokenizer files of MODEL_ID at MODEL_REVISION; a branch name is refused.
FROM python:3.12-slim AS tokenizer
ARG MODEL_ID=microsoft/kosmos-2-patch14-224
ARG MODEL_REVISION
RUN case "$MODEL_REVISION" in \
      *[!0-9a-f]*|"") echo "--build-arg MODEL_REVISION=<40-hex commit sha of $MODEL_ID> is required (got '$MODEL_REVISION')" >&2; exit 1 ;; \
    esac && \
    [ "${#MODEL_REVISION}" -eq 40 ] || { echo "MODEL_REVISION must be a full 40-hex commit sha" >&2; exit 1; } && \
    pip install --quiet --no-cache-dir huggingface_hub==0.36.0 && \
    python -c "from huggingface_hub import snapshot_download as d; d('$MODEL_ID', revision='$MODEL_REVISION', local_dir='/tokenizer', allow_patterns=['*.json', 'sentencepiece.bpe.model'])" && \
    rm -rf /tokenizer/.cache && echo "$MODEL_REVISION" > /tokenizer/.kosmos2-revision

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
COPY --from=tokenizer /tokenizer/ /app/tokenizer/
# Ports come from Service__Port / Service__HttpPort (JSON API and web page, wwwroot published beside the dll) /
# Service__MetricsPort; clear the image's default ASPNETCORE_HTTP_PORTS=8080 so
# Kestrel does not warn about an overridden address.
ENV ASPNETCORE_HTTP_PORTS= \
    Service__Host=0.0.0.0 \
    Service__Port=50051 \
    Service__HttpPort=8080 \
    Service__MetricsPort=9464 \
    Gateway__TokenizerDir=/app/tokenizer
EXPOSE 50051 8080 9464
# 1654 = the non-root "app" user the .NET images ship ($APP_UID); numeric so Kubernetes' runAsNonRoot can check it.
USER 1654
ENTRYPOINT ["dotnet", "/app/Kosmos2.Gateway.dll"]
