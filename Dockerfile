# ebpf_geoip_exporter image, and the image the docker-compose demo services
# and traffic generator run in.
#
#   docker build -t ebpf-geoip-exporter .                 # the exporter (last stage)
#   docker build --target demo -t ebpf-geoip-demo .        # demo services + traffic
#
# The builder uses the same Debian 12 -dev packages as a native build of the
# exporter (scripts/run: no tests, no benchmarks); the runtime stage
# installs only the shared libraries the binary links.

FROM debian:bookworm AS builder
# The build packages of scripts/lib/setup.sh, and iso-codes, whose country
# names the live map compiles in.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ make cmake pkg-config clang llvm bpftool libbpf-dev \
      prometheus-cpp-dev libcivetweb-dev libmaxminddb-dev libabsl-dev \
      libcrypt-dev iso-codes \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# .git stays out of the context: pass the revision, e.g.
#   docker compose build --build-arg REVISION=$(git rev-parse --short=12 HEAD)
ARG REVISION=unknown
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DGEOIP_REVISION="$REVISION" \
      -DGEOIP_BUILD_TESTS=OFF -DGEOIP_BUILD_BENCHMARKS=OFF \
 && cmake --build /build --target ebpf_geoip_exporter -j"$(nproc)" \
 && strip /build/exporter/ebpf_geoip_exporter

# Demo services (demo/services.py) and traffic generator (demo/traffic.py):
# python3 for both, iproute2 to put world addresses on the loopback.
FROM debian:bookworm-slim AS demo
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY demo/ /opt/ebpf-geoip/demo/
WORKDIR /opt/ebpf-geoip/demo
ENTRYPOINT ["python3"]
CMD ["services.py", "8081", "8082", "8083"]

# Pins: as the container's entrypoint the exporter is PID 1, which
# --bpf.pin-path=auto takes for a service, so it pins at
# /sys/fs/bpf/ebpf_geoip when that is a bpffs: mount the host's
#   docker run --cap-add BPF --cap-add PERFMON -v /sys/fs/bpf:/sys/fs/bpf ...
# and the probe keeps counting while the container restarts. Without that
# mount the container sees no bpffs and nothing is pinned.
FROM debian:bookworm-slim AS exporter
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libbpf1 libprometheus-cpp-core1.0 libcivetweb1 libmaxminddb0 libabsl20220623 libcrypt1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /build/exporter/ebpf_geoip_exporter /usr/local/bin/ebpf_geoip_exporter
COPY data/ /usr/share/ebpf-geoip/
EXPOSE 19100
ENTRYPOINT ["/usr/local/bin/ebpf_geoip_exporter", "--geoip.database=/usr/share/ebpf-geoip/geo-whois-asn-country.mmdb",
            "--geoip.asn-database=/usr/share/ebpf-geoip/ip-location-db-asn.mmdb"]
CMD ["--bpf.ports=8081,8082,8083"]
