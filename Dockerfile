# Reverie's command line in a container image, for batch shards on Kubernetes
# (`reverie batch k8s MANIFEST --image IMAGE ...`) or anywhere else a container runs.
# Build from the repository root:   docker build -t reverie:0.3 .
# Try it:                           docker run --rm reverie:0.3 reverie models list
# Not built by CI (the project's machine has no container engine); see docs/batch.md.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Reverie.Cli -c Release -o /opt/reverie --nologo

# The CLI also holds the studio (ASP.NET Core), hence the ASP.NET Core runtime.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libfontconfig1 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/reverie /opt/reverie
RUN ln -s /opt/reverie/Reverie.Cli /usr/local/bin/reverie
# Models are read from (and downloaded into) this cache; on a cluster, point it at the shared volume
# (`reverie batch k8s` sets REVERIE_CACHE to MOUNT/cache).
ENV REVERIE_CACHE=/var/cache/reverie DOTNET_CLI_TELEMETRY_OPTOUT=1
RUN mkdir -p /var/cache/reverie && chown app /var/cache/reverie
USER app
CMD ["reverie", "--help"]
