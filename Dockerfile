# orgaudit in a container: the release build, run as a non-root user (uid 65532) on a small
# Debian image that holds glibc and the CA certificates.
#
#   docker build --build-arg ORGAUDIT_COMMIT="$(git rev-parse HEAD)" -t orgaudit .
#   docker run --rm -v "$PWD:/work" -w /work orgaudit audit --input report.json
#
# The release workflow (.github/workflows/release.yml) builds and pushes it on every tag.

FROM rust:1-bookworm AS build
ARG ORGAUDIT_COMMIT=""
ARG SOURCE_DATE_EPOCH=""
ENV ORGAUDIT_COMMIT=${ORGAUDIT_COMMIT} SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY rules ./rules
COPY templates ./templates
COPY examples ./examples
COPY bench ./bench
RUN cargo build --release --locked --bin orgaudit \
 && install -m 0755 target/release/orgaudit /orgaudit

# Debian 12 slim: glibc, the CA certificates the API, SMTP and PostgreSQL clients trust, and a
# shell for CI runners that need one (GitLab's script, a Kubernetes debug session).
FROM debian:bookworm-slim
# Security updates of the CA bundle must not be held back by a pinned version.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 orgaudit \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin orgaudit
COPY --from=build /orgaudit /usr/local/bin/orgaudit
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["orgaudit"]
CMD ["--help"]
