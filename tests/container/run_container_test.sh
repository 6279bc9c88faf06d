#!/usr/bin/env bash
# A listener in a real Podman container is counted under the container's
# name: the `service` label of ebpf_geoip_accepted_connections_total, and an
# ebpf_geoip_listener_info series that names the container.
#
#   1. A Debian root file system from mmdebstrap (minbase, this machine's
#      release), imported with `podman import`: no registry is reachable. The
#      image holds nothing of ours; TRAFFIC_BINARY and the libraries ldd
#      lists for it (but glibc's, which the image has) are mounted read-only.
#   2. A private network namespace with public addresses on its loopback:
#      81.2.69.142 (GB) and, where IPv6 works, 2001:4860:4860::8888 (US).
#   3. The container geoip-test-web runs in that namespace
#      (--network ns:/run/netns/NS) with the traffic tool listening on
#      [::]:PORT (0.0.0.0:PORT without IPv6).
#   4. The exporter runs on the host with the real probe, watching PORT.
#   5. Clients in the namespace connect from the public addresses.
#   6. /metrics must count them exactly, under country, port and
#      service="geoip-test-web", and show one listener on PORT with that
#      service, the container's full id, its process and its namespace.
#
# usage: tests/container/run_container_test.sh EXPORTER_BINARY TRAFFIC_BINARY DATABASE
#   Needs root; exits 77 (skipped) without it. Needs podman, runc, conmon and
#   mmdebstrap (scripts/lib/setup.sh's test packages).
#
# Podman, its settings and the cached base image: tests/container/podman_env.sh.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (podman as root, a network namespace and the real probe)"
  exit 77
fi
[ $# = 3 ] || { echo "usage: $0 EXPORTER_BINARY TRAFFIC_BINARY DATABASE" >&2; exit 2; }

exporter_bin=$(realpath "$1")
traffic_bin=$(realpath "$2")
database=$(realpath "$3")
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/setup.sh"

# The container's name, and so the service its connections are counted under.
name=geoip-test-web
# Named as tests/support/netns.py names its namespaces, so that its clean-up
# of namespaces left by dead tests covers this one too.
ns=geoip-test-$$-0
gb_address=81.2.69.142 us_address=2001:4860:4860::8888
gb_count=5 us_count=3
# Budgets: the whole run stays well inside ctest's TIMEOUT, so the clean-up
# below always runs.
ready_budget=30 count_budget=15
# The listener serves at most this long, whatever happens to this script.
listen_seconds=600

started=$SECONDS
say() { echo "container: $*"; }
die() { echo "container: error: $*" >&2; exit 1; }

for tool in podman runc conmon mmdebstrap ip curl python3; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: scripts/test installs the test packages (scripts/lib/setup.sh)"
done

source "$repo/tests/container/podman_env.sh"
podman_env_start

exporter_pid=
failed=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$exporter_pid" ]; then
    kill "$exporter_pid" 2>/dev/null || true
    timeout 15 tail --pid="$exporter_pid" -f /dev/null || kill -KILL "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
  fi
  podman_env_remove || status=1
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
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

podman_env_image
podman_env_copy_binary "$traffic_bin"

# --- Namespace and container ------------------------------------------------
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$gb_address/32" dev lo
listen="[::]"
if ! ip -n "$ns" addr add "$us_address/128" dev lo nodad 2>/dev/null; then
  say "no IPv6 here: IPv4 only"
  listen=0.0.0.0 us_count=0
fi
port=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import exporter_process as e; print(e.free_port())' \
  "$repo/tests/support")

step=$SECONDS
container_id=$(podman run --detach --pull=never --name "$name" --network "ns:/run/netns/$ns" \
  --volume "$run_dir/app:/opt/geoip:ro" --env LD_LIBRARY_PATH=/opt/geoip/lib "$image" \
  /opt/geoip/ebpf_geoip_traffic "--listen=$listen:$port" "--timeout=$listen_seconds") ||
  die "podman run failed"
ready=0
for _ in $(seq $((ready_budget * 5))); do
  if podman logs "$name" 2>&1 | grep -qx listening; then ready=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
  sleep 0.2
done
if [ $ready != 1 ]; then
  podman logs "$name" >&2 || true
  die "the listener in $name did not say \"listening\" within $ready_budget s"
fi
read -r listener_pid conmon_pid < <(podman inspect --format '{{.State.Pid}} {{.State.ConmonPid}}' "$name")
say "container $name (${container_id:0:12}) listens on $listen:$port in namespace $ns, $((SECONDS - step)) s"
echo "--- /proc/$listener_pid/cgroup (the listener, seen from the host)"
cat "/proc/$listener_pid/cgroup"
echo "--- /proc/$conmon_pid/cgroup (conmon)"
cat "/proc/$conmon_pid/cgroup"
echo "--- /proc/$conmon_pid/cmdline (conmon)"
tr '\0' ' ' <"/proc/$conmon_pid/cmdline"
echo

# --- Exporter and clients ---------------------------------------------------
geoip_mounts
"$exporter_bin" --bpf.ports="$port" --web.listen-address=127.0.0.1:0 --geoip.database="$database" \
  --bpf.pin-path= --privileges.runas= --bpf.drain-interval=100ms >"$run_dir/exporter.log" 2>&1 9>&- &
exporter_pid=$!
metrics_port=$(python3 "$repo/tests/support/exporter_process.py" port "$run_dir/exporter.log" \
  --pid "$exporter_pid" --timeout 15) || die "the exporter did not start"
grep '^probe mode:' "$run_dir/exporter.log" || true

connect="$gb_address>127.0.0.1:$port*$gb_count"
[ "$us_count" = 0 ] || connect+=",$us_address>[::1]:$port*$us_count"
clients=$(ip netns exec "$ns" "$traffic_bin" "--connect=$connect" --timeout=20 9>&-) ||
  die "clients in $ns failed: $clients"
[ "$clients" = "connections made=$((gb_count + us_count)) accepted=0" ] ||
  die "clients in $ns: $clients"
say "$clients ($connect)"

# --- What /metrics says -----------------------------------------------------
metrics() { curl --silent --noproxy '*' --max-time 5 "http://127.0.0.1:$metrics_port/metrics"; }
# counted COUNTRY: the sum over this port's series of COUNTRY, whatever other
# labels they have.
counted() {
  metrics | sed -n "s/^ebpf_geoip_accepted_connections_total{\(.*\)} \([0-9.e+]*\)$/\1 \2/p" |
    grep -F "country=\"$1\"" | grep -F "port=\"$port\"" | awk '{ s += $NF } END { print s + 0 }'
}
for _ in $(seq $((count_budget * 10))); do
  [ "$(counted GB)" = "$gb_count" ] && [ "$(counted US)" = "$us_count" ] && break
  sleep 0.1
done
text=$(metrics)
echo "--- /metrics: the series of port $port and the listeners"
grep -E "^ebpf_geoip_accepted_connections_total\{.*port=\"$port\"|^ebpf_geoip_listener_info" <<<"$text" || true

check() {
  if grep -qxF "$2" <<<"$text"; then
    echo "ok: $1"
  else
    echo "FAIL: $1: no line '$2'" >&2
    failed=1
  fi
}
for country in GB US; do
  want=$([ $country = GB ] && echo $gb_count || echo $us_count)
  [ "$want" = 0 ] && continue
  got=$(counted $country)
  if [ "$got" = "$want" ]; then
    echo "ok: $want connections from $country counted on port $port"
  else
    echo "FAIL: counted $got of $want connections from $country on port $port" >&2
    failed=1
  fi
  check "counted under service=\"$name\"" \
    "ebpf_geoip_accepted_connections_total{country=\"$country\",port=\"$port\",service=\"$name\"} $want"
done
# The listener: one series, naming the container by its full id, the
# listener's process (its comm) and the namespace it listens in.
netns_inode=$(stat -L -c %i "/run/netns/$ns")
listeners=$(grep -E "^ebpf_geoip_listener_info\{.*\} 1$" <<<"$text" | grep -F "port=\"$port\"" || true)
want_labels=("service=\"$name\"" "container_id=\"$container_id\"" "process=\"ebpf_geoip_traf\""
  "netns=\"$netns_inode\"")
ok=$([ -n "$listeners" ] && [ "$(wc -l <<<"$listeners")" = 1 ] && echo 1 || echo 0)
for label in "${want_labels[@]}"; do
  grep -qF "$label" <<<"$listeners" || ok=0
done
if [ $ok = 1 ]; then
  echo "ok: one ebpf_geoip_listener_info on port $port with ${want_labels[*]}"
else
  echo "FAIL: want one ebpf_geoip_listener_info on port $port with ${want_labels[*]}" >&2
  failed=1
fi
if [ $failed != 0 ]; then
  echo "--- exporter log (last 30 lines)"
  tail -n 30 "$run_dir/exporter.log"
fi
exit 0  # cleanup says PASS or FAIL
