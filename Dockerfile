# ebpf_geoip_exporter image, and the image the docker-compose demo services
# and traffic generator run in.
#
#   docker build -t ebpf-geoip-exporter .                 # the exporter (last stage)
#   docker build --target demo -t ebpf-geoip-demo .        # demo services + traffic
#   podman build --network host -t ebpf-geoip-exporter .  # the same with Podman
#
# One list of packages, so the image cannot drift from a native build: the
# builder installs the build packages of scripts/lib/setup.sh (as
# scripts/run and tests/package do) and builds the project's Debian package
# (cmake/package/); the exporter stage installs that package with apt, so its
# Depends, which dpkg-shlibdeps takes from the binary, bring exactly the
# shared libraries it links. Nothing here names a library.

FROM debian:bookworm AS builder
# Only scripts/lib/ first: this layer is rebuilt when the package lists
# change, not with every source change.
COPY scripts/lib/ /src/scripts/lib/
RUN bash -c 'source /src/scripts/lib/setup.sh \
      && geoip_install "${geoip_run_packages[@]}" "${geoip_package_packages[@]}"' \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# .git stays out of the context: pass the revision, e.g.
#   docker compose build --build-arg REVISION=$(git rev-parse --short=12 HEAD)
ARG REVISION=unknown
# The package under a fixed name for the exporter stage to copy.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DGEOIP_REVISION="$REVISION" \
      -DGEOIP_BUILD_TESTS=OFF -DGEOIP_BUILD_BENCHMARKS=OFF -DGEOIP_PACKAGE=ON \
 && cmake --build /build --target package -j"$(nproc)" \
 && mv /build/ebpf-geoip-exporter_*.deb /build/ebpf-geoip-exporter.deb

# Demo services (demo/services.py) and traffic generator (demo/traffic.py):
# python3 for both, iproute2 to put world addresses on the loopback.
FROM debian:bookworm-slim AS demo
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 iproute2 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
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
#
# The package's postinst makes its user (ebpf-geoip) with systemd-sysusers
# and starts its unit only where systemd runs, which an image build is not.
# Depends asks for systemd or a systemd-sysusers: the standalone one (260 kB)
# instead of systemd (10 MB and its libraries), which a container never runs.
# apt's caches go (the package lists and its *.bin indexes of them):
# debian's own images have no downloaded .deb left, and a base from mmdebstrap
# may keep them in /var/cache/apt/archives (tests/container mounts a cache
# there). The binary is /usr/bin/ebpf_geoip_exporter, as the package installs it;
# /usr/local/bin/ebpf_geoip_exporter, where earlier images had it, still
# works for a command: that names it. The databases are in
# /usr/share/ebpf-geoip/, as before.
FROM debian:bookworm-slim AS exporter
COPY --from=builder /build/ebpf-geoip-exporter.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/ebpf-geoip-exporter.deb systemd-standalone-sysusers \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/ebpf-geoip-exporter.deb \
 && ln -s /usr/bin/ebpf_geoip_exporter /usr/local/bin/ebpf_geoip_exporter
EXPOSE 19100
# One instruction on two lines needs the backslash: without it the first
# line is not valid JSON (so a shell-form entrypoint) and the second an
# unknown instruction.
ENTRYPOINT ["/usr/bin/ebpf_geoip_exporter", "--geoip.database=/usr/share/ebpf-geoip/geo-whois-asn-country.mmdb", \
            "--geoip.asn-database=/usr/share/ebpf-geoip/ip-location-db-asn.mmdb"]
CMD ["--bpf.ports=8081,8082,8083"]
