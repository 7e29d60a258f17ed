# One image recipe for every Rust service: the builder stage compiles the whole workspace once
# (Docker reuses it for each service), the final stage holds one binary, chosen by BIN.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/stock-producer target/release/social-producer target/release/log-producer \
          target/release/stream-consumer target/release/gateway target/release/trade-bars /out/

FROM debian:bookworm-slim
ARG BIN
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 streamweaver
COPY --from=builder /out/${BIN} /usr/local/bin/service
USER streamweaver
ENTRYPOINT ["/usr/local/bin/service"]
