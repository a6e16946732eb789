# syntax=docker/dockerfile:1
# symbi container image: multi-stage build, slim non-root runtime image.
#
#   docker build -t symbi:0.1.0 .
#   docker run -p 8080:8080 -v symbi-data:/var/lib/symbi \
#       -v $PWD/config.toml:/etc/symbi/config.toml:ro symbi:0.1.0
#
# The default command is the MCP server (`symbi mcp`), as the product specification asks.
# To run the HTTP API daemon instead (what the Kubernetes manifests do):
#
#   docker run -p 8080:8080 -e SYMBI_API_TOKEN=... symbi:0.1.0 \
#       symbi up --config /etc/symbi/config.toml --listen 0.0.0.0:8080
#
# `symbi up` refuses a non-loopback --listen without an API token (SYMBI_API_TOKEN, the
# token file `[api] token_file`, or a key store), so set one.

# ---- build stage --------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p symbi --bin symbi \
 && install -D -m 0755 target/release/symbi /out/symbi

# ---- runtime stage ------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 symbi \
 && useradd --system --uid 10001 --gid symbi --home-dir /var/lib/symbi --shell /usr/sbin/nologin symbi \
 && install -d -o symbi -g symbi -m 0750 /var/lib/symbi /etc/symbi
COPY --from=build /out/symbi /usr/local/bin/symbi
ENV SYMBI_DATA_DIR=/var/lib/symbi \
    SYMBI_LOG_FORMAT=json \
    SYMBI_RUNTIME_MODE=production
USER 10001:10001
WORKDIR /var/lib/symbi
VOLUME ["/var/lib/symbi"]
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["symbi", "mcp", "--config", "/etc/symbi/config.toml"]
