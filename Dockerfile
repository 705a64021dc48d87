# Portico in a container: built on the Rust image, run on a small Debian
# image as an unprivileged user, data in the /data volume.
#
#   docker build -t portico .
#   docker run -p 3000:3000 -v portico-data:/data \
#     -e PUBLIC_URL=http://localhost:3000 portico
#
# PUBLIC_URL is required: the server listens on 0.0.0.0 inside the
# container, which is not the address a browser opens. Portico accepts
# dashboard forms only from PUBLIC_URL's origin and checks the Host header
# against it, so set it to exactly what users type (https://portico.example.com
# behind a TLS proxy; cookies are then marked Secure).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY benches ./benches
RUN cargo build --release --locked --bin portico

FROM debian:bookworm-slim
# git clones repository workspaces; ca-certificates for https remotes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin portico \
 && mkdir -p /data /app \
 && chown portico:portico /data \
 && chmod 0700 /data
COPY --from=builder /src/target/release/portico /usr/local/bin/portico
COPY --from=builder /src/static /app/static
WORKDIR /app
ENV BIND=0.0.0.0:3000 \
    DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3000
USER portico
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["portico", "healthcheck"]
CMD ["portico", "serve"]
