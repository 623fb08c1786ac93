# syntax=docker/dockerfile:1
#
# order-service image, in four stages:
#   chef     the Rust toolchain (the 1.95 family, Debian 12) plus cargo-chef;
#   planner  `cargo chef prepare`: a recipe of the dependency graph (Cargo.toml, Cargo.lock);
#   builder  `cargo chef cook` builds the dependencies alone, into a layer that stays cached
#            until Cargo.toml or Cargo.lock change; then the project itself is built;
#   runtime  debian:bookworm-slim with the binary, run as a non-root user.
#
# Why cargo-chef rather than the "dummy main.rs" trick: Cargo.toml declares a library, a
# binary, an example and two test targets by path; the trick needs a stub for each, kept in
# sync by hand, while cargo-chef derives them from the manifest.
#
# librdkafka is compiled from the copy bundled in rdkafka-sys with its own ./configure and
# make (no cmake: the cmake-build feature is off); the rust:*-bookworm image already has gcc,
# make, pkg-config, zlib's and OpenSSL's headers (libssl-dev). librdkafka links the system's
# OpenSSL (rdkafka's `ssl` feature: TLS and SASL/SCRAM to Kafka, KAFKA_SECURITY_PROTOCOL), so
# the runtime stage adds libssl3, and ca-certificates for brokers signed by a public CA
# (KAFKA_SSL_CA_LOCATION unset); zstd and lz4-ext are off. sqlx's TLS to PostgreSQL is rustls
# on ring (built with the same gcc, linked in: no OpenSSL) with the webpki roots compiled in.
#
#   docker build -t order-service .
#   docker run --rm -p 8081:8081 -e DATABASE_URL=... -e KAFKA_BROKERS=... order-service

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin order-service

FROM debian:bookworm-slim AS runtime
# OpenSSL for librdkafka's TLS and SCRAM; the system's CAs for brokers with public certificates.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A system user without a shell or a home; the service writes nothing to disk.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /app/target/release/order-service /usr/local/bin/order-service
USER app:app
# An empty directory of root's: the binary looks for a .env file in its working directory.
WORKDIR /srv/order-service
ENV HTTP_ADDR=0.0.0.0:8081 \
    RUST_LOG=info,sqlx::postgres::notice=warn
EXPOSE 8081
# GET /health/live over bash's /dev/tcp, on the port of HTTP_ADDR: the slim image has bash
# but no curl, and curl would add about 15 MiB of libraries for this one request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_ADDR##*:} && printf 'GET /health/live HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["order-service"]
CMD ["serve"]
