#!/usr/bin/env bash
# The repository's images, built from its Dockerfile and run as
# docker-compose.yml runs them, with the exporter as a least-privilege
# deployment runs it:
#
#   1. `podman build --network host` of the Dockerfile's exporter and demo
#      stages, from debian:bookworm and debian:bookworm-slim tagged from the
#      cached mmdebstrap base (no registry is reachable; podman_env.sh). Apt's
#      downloads are kept in GEOIP_CONTAINER_CACHE/apt-archives.
#   2. The exporter image with compose's command and capabilities, but every
#      other capability dropped (--cap-drop ALL: what a Kubernetes pod with
#      `drop: [ALL]` gets; Docker would leave SETUID and SETGID), not
#      privileged, the seccomp profile deploy/seccomp/derive-profile writes
#      from Podman's own, its default --privileges.runas, and a network
#      namespace of its own. It must attach, fail to become nobody, drop its
#      capabilities and say so (log, and CapEff 0 in /proc/PID/status), and
#      keep running.
#   3. demo-hello in a network namespace the test makes, the other demo
#      services and the traffic generator in its namespace
#      (network_mode: service:demo-hello), each with compose's command,
#      environment, capabilities and sysctls, read from
#      `docker-compose config` (tests/container/compose_services.py), so the
#      test follows the file. The traffic generator puts the world addresses
#      of demo/world-addresses.txt on that namespace's loopback, as in
#      compose; only its --rounds and --interval are made small.
#   4. The exporter must count exactly what the traffic generator made: per
#      country and port, ebpf_geoip_accepted_connections_total equals
#      rounds × (1 + index % 3) per address (demo/traffic.py), summed over
#      the addresses of each country label in world-addresses.txt; and its
#      knocks at --refused-port, once per address and round, as refused.
#
# The Prometheus and Grafana images are pulled from a registry, which this
# machine cannot reach: the test says so and runs everything else (their
# configuration is checked by tests/bundle).
#
# usage: tests/container/run_images_test.sh
#   Needs root; exits 77 (skipped) without it. Podman, its settings and the
#   cached base image: tests/container/podman_env.sh.
# shellcheck disable=SC2154  # compose_* are set by compose_services.py's output
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (podman as root, network namespaces and the real probe)"
  exit 77
fi
[ $# = 0 ] || { echo "usage: $0" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/setup.sh"

# Named as tests/support/netns.py names its namespaces, so that its clean-up
# of namespaces left by dead tests covers these too.
demo_ns=geoip-test-$$-0 exporter_ns=geoip-test-$$-1
# The traffic generator's rounds and the seconds between them: small and
# fixed, so the counts are known.
rounds=2 interval=0.2
build_budget=900 ready_budget=30 traffic_budget=120 count_budget=15

started=$SECONDS
say() { echo "images: $*"; }
die() { echo "images: error: $*" >&2; exit 1; }

for tool in podman runc conmon mmdebstrap ip curl python3 docker-compose; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: scripts/test installs the test packages (scripts/lib/setup.sh)"
done

source "$repo/tests/container/podman_env.sh"
podman_env_start

failed=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ $failed != 0 ] && [ -f "$run_dir/containers.conf" ]; then
    for name in exporter demo-hello demo-summit demo-words traffic; do
      echo "--- podman logs $name (last 20 lines)"
      podman logs "$name" 2>&1 | tail -n 20 || true
    done
  fi
  podman_env_remove || status=1
  for ns in "$demo_ns" "$exporter_ns"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  [ $failed = 0 ] || status=1
  if [ "$status" = 0 ]; then
    say "PASS in $((SECONDS - started)) s"
  else
    say "FAIL (exit $status) in $((SECONDS - started)) s"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check() {
  if [ "$2" = "$3" ]; then
    echo "ok: $1 ($3)"
  else
    echo "FAIL: $1: want '$3', got '$2'" >&2
    failed=1
  fi
}

# --- What the compose file and the Dockerfile say ---------------------------
python3 "$repo/tests/container/compose_services.py" "$repo" >"$run_dir/compose.sh" ||
  die "cannot read docker-compose.yml"
source "$run_dir/compose.sh"
built=(exporter demo-hello demo-summit demo-words traffic)
pulled=()
for service in "${compose_services[@]}"; do
  target_var=compose_target_${service//-/_}
  if [ -z "${!target_var}" ]; then
    image_var=compose_image_${service//-/_}
    pulled+=("$service (${!image_var})")
  elif ! printf '%s\n' "${built[@]}" | grep -qx "$service"; then
    die "docker-compose.yml has a new service $service, built from the Dockerfile: run it here too"
  fi
done
check "the exporter's capabilities in docker-compose.yml" "${compose_options_exporter[*]}" \
  "--cap-add BPF --cap-add PERFMON --ulimit memlock=-1:-1"
# The Dockerfile builds from this machine's release, whose base podman_env.sh
# makes.
bases=$(sed -n 's/^FROM \([^ ]*\) AS .*/\1/p' "$repo/Dockerfile" | sort -u | tr '\n' ' ')
if [ "$bases" != "debian:$suite debian:$suite-slim " ]; then
  echo "SKIP: the Dockerfile builds from ${bases}and this machine runs $suite, whose base image is all podman_env.sh can make"
  exit 77
fi
say "SKIP part: ${pulled[*]}: no container registry is reachable here, so these images cannot be pulled; tests/bundle checks their configuration"

# --- Images -----------------------------------------------------------------
podman_env_image
podman tag "$image" "docker.io/library/debian:$suite" "docker.io/library/debian:$suite-slim"
apt_cache=$cache/apt-archives
mkdir -p "$apt_cache/partial"
find "$apt_cache" -name '*.deb' -mtime "+$max_age_days" -delete
revision=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
for target in exporter demo; do
  step=$SECONDS
  name=$([ $target = exporter ] && echo "$compose_image_exporter" || echo "$compose_image_demo_hello")
  podman_budget=$build_budget podman build --network host --pull=never --target "$target" \
    --tag "$name" --build-arg "REVISION=$revision" --volume "$apt_cache:/var/cache/apt/archives" \
    --file "$repo/Dockerfile" "$repo" >"$run_dir/build-$target.log" 2>&1 &&
    size=$(podman image inspect --format '{{.Size}}' "$name" 2>/dev/null) || {
    tail -n 40 "$run_dir/build-$target.log" >&2
    die "podman build --target $target made no image $name (the end of its log is above)"
  }
  say "built $name (stage $target): $((size / 1000000)) MB, $((SECONDS - step)) s"
done
for service in demo-hello demo-summit demo-words traffic; do
  image_var=compose_image_${service//-/_} target_var=compose_target_${service//-/_}
  [ "${!image_var}" = "$compose_image_demo_hello" ] && [ "${!target_var}" = demo ] ||
    die "$service: the test knows the demo services as stage demo, image $compose_image_demo_hello"
done

# --- The exporter, least privilege ------------------------------------------
"$repo/deploy/seccomp/derive-profile" --output "$run_dir/seccomp.json" ||
  die "deploy/seccomp/derive-profile failed"
ip netns add "$exporter_ns"
ip -n "$exporter_ns" link set lo up
metrics_port=19100
for arg in "${compose_command_exporter[@]}"; do
  case $arg in --web.listen-address=*) metrics_port=${arg##*:} ;; esac
done
# Compose's memlock ulimit is for kernels before 5.11, which charge BPF maps
# to RLIMIT_MEMLOCK. With --cap-drop ALL, runc 1.1 (Debian 12) cannot raise a
# limit ("error setting rlimit type 8"), even with SYS_RESOURCE: measured.
exporter_options=()
set -- "${compose_options_exporter[@]}"
while [ $# -gt 0 ]; do
  case "$1 ${2:-}" in
    "--ulimit memlock="*) say "left out for --cap-drop ALL: $1 $2 (kernels 5.11+ charge BPF maps to the memory cgroup)"; shift ;;
    *) exporter_options+=("$1") ;;
  esac
  shift
done
geoip_mounts
step=$SECONDS
podman run --detach --pull=never --name exporter --network "ns:/run/netns/$exporter_ns" \
  --cap-drop ALL "${exporter_options[@]}" --security-opt "seccomp=$run_dir/seccomp.json" \
  "$compose_image_exporter" "${compose_command_exporter[@]}" >/dev/null || die "podman run exporter failed"
metrics() {
  ip netns exec "$exporter_ns" curl --silent --noproxy '*' --max-time 5 \
    "http://127.0.0.1:$metrics_port${1:-/metrics}" 9>&-
}
healthy=0
for _ in $(seq $((ready_budget * 5))); do
  if metrics /-/healthy >/dev/null; then healthy=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' exporter 2>/dev/null)" = true ] || break
  sleep 0.2
done
log=$(podman logs exporter 2>&1)
echo "--- log of the exporter container"
echo "$log"
[ $healthy = 1 ] || { failed=1; die "the exporter did not answer /-/healthy within $ready_budget s"; }
say "exporter healthy, $((SECONDS - step)) s"
status=$(cat "/proc/$(podman inspect --format '{{.State.Pid}}' exporter)/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$status"; }
# Kernels before 6.5 with unprivileged BPF disabled check CAP_BPF on every
# map read; there the exporter keeps that one and says so.
want_caps=0000000000000000
grep -q 'with only CAP_BPF' <<<"$log" && want_caps=0000008000000000
check "the probe attached" "$(grep -cE '^probe [a-z_ ]*: attached' <<<"$log")" 1
check "no CAP_SETUID: it says it stays uid 0" \
  "$(grep -c 'no CAP_SETUID and CAP_SETGID to switch users' <<<"$log")" 1
check "it stays uid 0" "$(field Uid)" "$(printf '0\t0\t0\t0')"
check "its effective capabilities after attaching" "$(field CapEff)" "$want_caps"
check "its permitted capabilities after attaching" "$(field CapPrm)" "$want_caps"

# --- Demo services and traffic, as compose runs them ------------------------
ip netns add "$demo_ns"
# run_service NAME [OPTIONS...]: compose's settings and command for NAME.
run_service() {
  local service=$1 var=${1//-/_} network
  shift
  local -n service_options=compose_options_$var service_command=compose_command_$var
  network=compose_network_$var
  network=${!network:+container:${!network}}
  podman run --detach --pull=never --name "$service" --network "${network:-ns:/run/netns/$demo_ns}" \
    "${service_options[@]}" "$@" "$compose_image_demo_hello" "${service_command[@]}" >/dev/null ||
    die "podman run $service failed"
}
step=$SECONDS
for service in demo-hello demo-summit demo-words; do run_service "$service"; done
# The generator's command with a known, small number of rounds.
traffic_command=()
set -- "${compose_command_traffic[@]}"
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) traffic_command+=("$1" "$rounds"); shift ;;
    --interval) traffic_command+=("$1" "$interval"); shift ;;
    *) traffic_command+=("$1") ;;
  esac
  shift
done
case " ${compose_command_traffic[*]} " in
  *" --rounds "*" --interval "* | *" --interval "*" --rounds "*) ;;
  *) die "compose's traffic command has no --rounds and --interval: ${compose_command_traffic[*]}" ;;
esac
compose_command_traffic=("${traffic_command[@]}")
run_service traffic
say "traffic: ${compose_command_traffic[*]}"
podman_budget=$traffic_budget podman wait traffic >/dev/null || die "the traffic generator did not finish within $traffic_budget s"
traffic_log=$(podman logs traffic 2>&1)
echo "--- log of the traffic container"
echo "$traffic_log"
check "the traffic generator's exit status" "$(podman inspect --format '{{.State.ExitCode}}' traffic)" 0
say "demo services and traffic: $((SECONDS - step)) s"

# --- What the exporter must count -------------------------------------------
# From the generator's own file (the image has the same one) and its rule of
# 1 + index % 3 connections per address and port, each round.
ports=8081,8082,8083 refused_port=
set -- "${compose_command_traffic[@]}"
while [ $# -gt 0 ]; do
  case $1 in
    --ports) ports=$2; shift ;;
    --refused-port) refused_port=$2; shift ;;
  esac
  shift
done
expected=$(awk -v rounds="$rounds" -v ports="$ports" '
  { sub(/^[ \t]+/, "") }
  /^#/ || NF == 0 { next }
  { split($0, parts, "#"); split(parts[2], words, " "); label = words[1]
    n = split(ports, p, ",")
    for (i = 1; i <= n; i++) accepted[label " " p[i]] += rounds * (1 + index_ % 3)
    refused[label] += rounds; index_++ }
  END { for (k in accepted) print "accepted", k, accepted[k]
        for (k in refused) print "refused", k, refused[k] }' "$repo/demo/world-addresses.txt" | sort)
addresses=$(grep -cvE '^[[:space:]]*(#|$)' "$repo/demo/world-addresses.txt")
made=$(awk '$1 == "accepted" { s += $4 } END { print s }' <<<"$expected")
check "what the generator says it made" "$(grep '^traffic: [0-9]* connections' <<<"$traffic_log")" \
  "traffic: $made connections from $addresses addresses, 0 failed"

# Sums of ebpf_geoip_accepted_connections_total per country and port (the
# ports of the demo), and of refused failed connections per country.
counted() {
  metrics | awk -v ports=",$ports," '
    function label(s, key,   m) { return match(s, key "=\"[^\"]*\"") ? substr(s, RSTART + length(key) + 2, RLENGTH - length(key) - 3) : "" }
    /^ebpf_geoip_accepted_connections_total\{/ && index(ports, "," label($0, "port") ",") {
      sum["accepted " label($0, "country") " " label($0, "port")] += $NF }
    /^ebpf_geoip_failed_connections_total\{/ && label($0, "reason") == "refused" &&
      label($0, "port") == "other" && label($0, "country") != "private" {
      sum["refused " label($0, "country")] += $NF }
    END { for (k in sum) print k, sum[k] }' | sort
}
# Loopback knocks of any process on this host count as private: only the
# world addresses' refused connections are compared.
want=$(grep -v '^refused private ' <<<"$expected")
if [ -z "$refused_port" ]; then want=$(grep -v '^refused ' <<<"$want"); fi
got=
for _ in $(seq $((count_budget * 10))); do
  got=$(counted)
  [ -z "$refused_port" ] && got=$(grep -v '^refused ' <<<"$got" || true)
  [ "$got" = "$want" ] && break
  sleep 0.1
done
if [ "$got" = "$want" ]; then
  echo "ok: the exporter counted exactly what the generator made, per country and port:"
  sed 's/^/  /' <<<"$want"
else
  echo "FAIL: the exporter's counts (>) differ from what the generator made (<):" >&2
  diff <(echo "$want") <(echo "$got") >&2 || true
  failed=1
fi
check "the exporter is still running" "$(podman inspect --format '{{.State.Running}}' exporter)" true
exit 0 # cleanup says PASS or FAIL
