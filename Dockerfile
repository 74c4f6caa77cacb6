# kmsim in a container: `docker build -t kmsim .` (or `podman build`), then
#   docker run --rm kmsim run /usr/share/kmsim/scenarios/ebs/ebs-story.ron
#   docker run --rm -v "$PWD:/work" kmsim sweep scenarios/bench/fleet-1k.ron --runs 8 --out out
# The README's Kubernetes and Slurm examples run this image.

# Build: the release binary, from the locked dependencies.
FROM docker.io/library/rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin kmsim && strip target/release/kmsim

# Run: the binary (it needs only the C library) and the bundled scenarios.
FROM docker.io/library/debian:bookworm-slim
COPY --from=build /src/target/release/kmsim /usr/local/bin/kmsim
COPY scenarios /usr/share/kmsim/scenarios
COPY LICENSE /usr/share/doc/kmsim/LICENSE
RUN useradd --create-home --uid 10001 kmsim && mkdir /work && chown kmsim /work
USER kmsim
WORKDIR /work
ENTRYPOINT ["kmsim"]
CMD ["--help"]
