# Shared set-up for scripts/run, scripts/test and friends. Source it, then
# call geoip_setup run|test. Idempotent: installs only what is missing, and
# the build is incremental.

geoip_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
geoip_build="${GEOIP_BUILD_DIR:-$geoip_repo/build}"
# What differs between Debian 12 and 13 (package names, versions).
source "$geoip_repo/scripts/lib/distro.sh"

# Packages needed to build and run the exporter.
geoip_run_packages=(clang llvm bpftool libbpf-dev pkg-config cmake make g++
  prometheus-cpp-dev libcivetweb-dev libmaxminddb-dev libabsl-dev libcrypt-dev libyaml-cpp-dev libssl-dev
  iso-codes iproute2)
# Packages that building the Debian package needs on top of those
# (cmake/package/: the man page from --help, Depends from dpkg-shlibdeps,
# which CPack runs on the binaries that file(1) finds).
geoip_package_packages=(dpkg-dev file help2man)
# Packages the test suite needs on top: GoogleTest and Google Benchmark (the
# tests and benchmarks build with them), clang-format (the format test), test
# databases, Prometheus and
# promtool, compose validation (and the YAML module its test reads the output
# with), the QEMU kernel matrix, the browser, the container test (Podman with
# runc, as root in a namespace the test makes: no uidmap or slirp4netns; its
# image from mmdebstrap), the Debian package (tests/package), and iptables for
# the storm's test of connections the kernel discards before accept.
# geoip_distro_test_packages adds those whose names differ between releases
# (the libFuzzer runtime).
geoip_test_packages=(libgtest-dev libbenchmark-dev clang-format libmaxmind-db-writer-perl mmdb-bin
  prometheus docker-compose python3-yaml qemu-system-x86 busybox-static chromium
  chromium-driver python3 stunnel4 openssl curl systemd podman runc mmdebstrap iptables
  "${geoip_package_packages[@]}")
# tests/kubernetes validates deploy/kubernetes with Node.js packages from npm.
# npm is installed only where no npm command exists: a Node.js from another
# source (which provides its own npm) conflicts with Debian's npm package.
geoip_test_commands_packages() {
  command -v node >/dev/null || echo nodejs
  command -v npm >/dev/null || echo npm
}

geoip_die() { echo "error: $*" >&2; exit 1; }

geoip_need_root() {
  [ "$(id -u)" = 0 ] || geoip_die "run this as root (sudo $0): it installs packages and loads an eBPF probe"
}

# geoip_packages run|test: every package the mode needs, one a line. For
# test, clang (a run package) must be installed already.
geoip_packages() {
  printf '%s\n' "${geoip_run_packages[@]}"
  if [ "$1" = test ]; then
    printf '%s\n' "${geoip_test_packages[@]}"
    geoip_distro_test_packages
  fi
}

# Prints the packages named that are not installed, one a line.
geoip_missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

# Installs the packages named that are not installed yet.
geoip_install() {
  local missing=()
  mapfile -t missing < <(geoip_missing_packages "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || geoip_die "apt-get update failed: check the network and /etc/apt/sources.list"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    geoip_die "apt-get install ${missing[*]} failed"
}

# Mounts what the probe may need: bpffs for pins, tracefs for tracepoints.
geoip_mounts() {
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
  mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
}

# Options every configure passes: warnings become errors when
# GEOIP_WARNINGS_AS_ERRORS=1 (.ci/run sets it).
geoip_cmake_options() {
  echo "-DGEOIP_WARNINGS_AS_ERRORS=$([ "${GEOIP_WARNINGS_AS_ERRORS:-0}" = 1 ] && echo ON || echo OFF)"
}

# geoip_build run|test: test builds the tests and benchmarks too. run builds
# only the exporter in a new build directory (no GoogleTest or Google
# Benchmark needed), and leaves an existing one as it was configured.
geoip_build() {
  local options=(-DCMAKE_BUILD_TYPE=Release "$(geoip_cmake_options)")
  if [ "$1" = test ]; then
    options+=(-DGEOIP_BUILD_TESTS=ON -DGEOIP_BUILD_BENCHMARKS=ON)
  elif [ ! -f "$geoip_build/CMakeCache.txt" ]; then
    options+=(-DGEOIP_BUILD_TESTS=OFF -DGEOIP_BUILD_BENCHMARKS=OFF)
  fi
  cmake -S "$geoip_repo" -B "$geoip_build" "${options[@]}" >/dev/null ||
    geoip_die "cmake configure failed"
  cmake --build "$geoip_build" -j"$(nproc)" ||
    geoip_die "build failed"
}

# geoip_checked_build_options LEVEL: the build type of the sanitizer (-O0)
# and fuzz (-O1) builds: LEVEL and -g1, whose line tables are what the
# sanitizers' reports print, instead of RelWithDebInfo's -O2 -g. Measured
# with address,undefined: tests/e2e_test.cc compiles in 113 s at -O2 -g,
# 40 s at -O1 -g1 and 13 s at -O0; the whole ASan build takes 4.7 min at
# -O0 -g1 and 7.6 at -O1 -g1, and its tests 180 s instead of 154. The fuzz
# targets keep -O1, where each second of fuzzing runs more inputs.
geoip_checked_build_options() {
  printf '%s\n' -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$1 -g1 -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$1 -g1 -DNDEBUG"
}

# geoip_build_sanitized DIR SANITIZERS: a second build of the tests with
# sanitizers (e.g. address,undefined or thread), for scripts/test.
geoip_build_sanitized() {
  local options
  mapfile -t options < <(geoip_checked_build_options -O0)
  cmake -S "$geoip_repo" -B "$1" "${options[@]}" \
    -DGEOIP_SANITIZE="$2" -DGEOIP_BUILD_BENCHMARKS=OFF "$(geoip_cmake_options)" >/dev/null ||
    geoip_die "cmake configure ($2) failed"
  cmake --build "$1" -j"$(nproc)" || geoip_die "build with $2 sanitizers failed"
}

# geoip_setup run|test
geoip_setup() {
  local packages=()
  geoip_need_root
  geoip_distro_check
  geoip_install "${geoip_run_packages[@]}"
  if [ "$1" = test ]; then
    mapfile -t packages < <(geoip_packages test; geoip_test_commands_packages)
    geoip_install "${packages[@]}"
  fi
  geoip_mounts
  geoip_build "$1"
}
