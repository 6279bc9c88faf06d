#!/usr/bin/env bash
# The exporter in a real Podman container, run the way the Kubernetes
# DaemonSet (deploy/kubernetes/base/daemonset.yaml) runs it: the test reads
# the manifest, so when the manifest changes, this run changes with it.
#
#   - capabilities: drop ALL, add exactly the manifest's list (BPF, PERFMON);
#   - readOnlyRootFilesystem, allowPrivilegeEscalation: false
#     (no-new-privileges), hostPID;
#   - seccompProfile RuntimeDefault: Podman's own default profile refuses
#     bpf() without CAP_SYS_ADMIN, so the run uses that profile with the one
#     rule containerd (1.7, 1.6.9 and later) and Docker (23.0 and later) add
#     to theirs: bpf() with CAP_BPF, perf_event_open() with CAP_PERFMON, as
#     the shipped deploy/seccomp/derive-profile writes it;
#   - the manifest's args (the image's entrypoint adds the database), and its
#     bpf pin volume: a directory of the host's bpf file system of the test's
#     own, mounted where the manifest mounts it;
#   - a network namespace of its own, as a pod has.
#
# Then:
#   1. the exporter runs, gives up every capability once attached (CapEff,
#      CapPrm, NoNewPrivs of its process, and its log), and counts 5
#      connections from a GB client exactly;
#   2. the container stops (podman stop, SIGTERM); the probe stays pinned;
#      3 more connections arrive while no exporter runs;
#   3. a new container takes the pins over and counts those 3 exactly: a pod
#      restart or a rolling upgrade loses nothing.
#
# usage: tests/container/run_daemonset_test.sh EXPORTER_BINARY TRAFFIC_BINARY DATABASE
#   Needs root; exits 77 (skipped) without it. Podman, its settings and the
#   cached base image: tests/container/podman_env.sh.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (podman as root, network namespaces and the real probe)"
  exit 77
fi
[ $# = 3 ] || { echo "usage: $0 EXPORTER_BINARY TRAFFIC_BINARY DATABASE" >&2; exit 2; }

exporter_bin=$(realpath "$1")
traffic_bin=$(realpath "$2")
database=$(realpath "$3")
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/setup.sh"
manifest=$repo/deploy/kubernetes/base/daemonset.yaml

# Named as tests/support/netns.py names its namespaces, so that its clean-up
# of namespaces left by dead tests covers these too.
clients_ns=geoip-test-$$-0 pod_ns=geoip-test-$$-1
gb_address=81.2.69.142
first_count=5 gap_count=3
ready_budget=30 count_budget=15 listen_seconds=600

started=$SECONDS
say() { echo "daemonset: $*"; }
die() { echo "daemonset: error: $*" >&2; exit 1; }

for tool in podman runc conmon mmdebstrap ip curl python3; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: scripts/test installs the test packages (scripts/lib/setup.sh)"
done
[ -f "$manifest" ] || die "no $manifest"

source "$repo/tests/container/podman_env.sh"
podman_env_start

geoip_mounts
pins_host=/sys/fs/bpf/geoip-test-$$
listener_pid=
failed=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  podman_env_remove || status=1
  [ -z "$listener_pid" ] || kill "$listener_pid" 2>/dev/null || true
  for ns in "$clients_ns" "$pod_ns"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  # Unpinning the links detaches the probe.
  rm -rf "$pins_host"
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

# --- What the manifest asks for ---------------------------------------------
# One line per setting, "key value...", from the DaemonSet's only container.
settings=$(python3 - "$manifest" <<'EOF'
import sys, yaml
ds = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
(c,) = pod["containers"]
sc = c.get("securityContext", {})
vols = {v["name"]: v for v in pod.get("volumes", [])}
print("host_pid", str(pod.get("hostPID", False)).lower())
print("privileged", str(sc.get("privileged", False)).lower())
print("read_only", str(sc.get("readOnlyRootFilesystem", False)).lower())
print("escalation", str(sc.get("allowPrivilegeEscalation", True)).lower())
print("seccomp", sc.get("seccompProfile", {}).get("type", "Unconfined"))
print("drop", " ".join(sc.get("capabilities", {}).get("drop", [])))
print("add", " ".join(sc.get("capabilities", {}).get("add", [])))
print("args", " ".join(c.get("args", [])))
for m in c.get("volumeMounts", []):
    path = vols[m["name"]].get("hostPath", {}).get("path", "")
    if path.startswith("/sys/fs/bpf"):
        print("pin_mount", m["mountPath"])
EOF
) || die "cannot read $manifest"
setting() { sed -n "s/^$1 //p" <<<"$settings"; }
echo "--- $manifest"
echo "$settings"
[ "$(setting privileged)" = false ] || die "the manifest asks for a privileged container"
[ "$(setting drop)" = ALL ] || die "the manifest does not drop ALL capabilities"
[ "$(setting seccomp)" = RuntimeDefault ] || die "this test knows seccompProfile RuntimeDefault only"
pin_mount=$(setting pin_mount)
[ -n "$pin_mount" ] || die "the manifest mounts no directory of /sys/fs/bpf"
read -r -a manifest_args <<<"$(setting args)"
metrics_port=19100
for arg in "${manifest_args[@]}"; do
  case $arg in --web.listen-address=*) metrics_port=${arg##*:} ;; esac
done

run_flags=(--pull=never --network "ns:/run/netns/$pod_ns" --cap-drop ALL)
for cap in $(setting add); do run_flags+=(--cap-add "$cap"); done
[ "$(setting read_only)" != true ] || run_flags+=(--read-only)
[ "$(setting escalation)" != false ] || run_flags+=(--security-opt no-new-privileges)
[ "$(setting host_pid)" != true ] || run_flags+=(--pid host)

# RuntimeDefault as containerd and Docker have it (see the top of this file):
# the shipped deploy/seccomp/derive-profile, from Podman's own profile.
"$repo/deploy/seccomp/derive-profile" --output "$run_dir/seccomp.json" ||
  die "deploy/seccomp/derive-profile failed"
run_flags+=(--security-opt "seccomp=$run_dir/seccomp.json")

podman_env_image
podman_env_copy_binary "$exporter_bin"
cp "$database" "$run_dir/app/geoip.mmdb"

# --- Namespaces and the listener --------------------------------------------
ip netns add "$clients_ns"
ip -n "$clients_ns" link set lo up
ip -n "$clients_ns" addr add "$gb_address/32" dev lo
ip netns add "$pod_ns"
ip -n "$pod_ns" link set lo up
port=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import exporter_process as e; print(e.free_port())' \
  "$repo/tests/support")
ip netns exec "$clients_ns" "$traffic_bin" "--listen=0.0.0.0:$port" "--timeout=$listen_seconds" \
  >"$run_dir/listener.log" 2>&1 9>&- &
listener_pid=$!
mkdir "$pins_host"

# --- The exporter pod -------------------------------------------------------
# start_pod NAME: starts the exporter as the manifest says and waits until
# /-/healthy answers in the pod's network namespace.
start_pod() {
  local name=$1
  podman run --detach --name "$name" "${run_flags[@]}" \
    --volume "$run_dir/app:/opt/geoip:ro" --volume "$pins_host:$pin_mount" \
    --env LD_LIBRARY_PATH=/opt/geoip/lib "$image" \
    /opt/geoip/ebpf_geoip_exporter --geoip.database=/opt/geoip/geoip.mmdb "${manifest_args[@]}" \
    >/dev/null || die "podman run $name failed"
  for _ in $(seq $((ready_budget * 5))); do
    if ip netns exec "$pod_ns" curl --silent --fail --noproxy '*' --max-time 2 \
      "http://127.0.0.1:$metrics_port/-/healthy" >/dev/null 9>&-; then
      say "$name is healthy"
      return 0
    fi
    [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
    sleep 0.2
  done
  podman logs "$name" >&2 || true
  die "$name did not answer /-/healthy within $ready_budget s"
}
metrics() {
  ip netns exec "$pod_ns" curl --silent --noproxy '*' --max-time 5 \
    "http://127.0.0.1:$metrics_port/metrics" 9>&-
}
# counted: connections from GB on the test's port, summed over services.
counted() {
  metrics | awk -v port="port=\"$port\"" '/^ebpf_geoip_accepted_connections_total\{/ &&
    index($0, "country=\"GB\"") && index($0, port) { s += $NF } END { print s + 0 }'
}
connect() {
  local out
  out=$(ip netns exec "$clients_ns" "$traffic_bin" "--connect=$gb_address>127.0.0.1:$port*$1" \
    --timeout=20 9>&-) || die "clients failed: $out"
  [ "$out" = "connections made=$1 accepted=0" ] || die "clients: $out"
}
expect_count() {
  local want=$1 what=$2 got=
  for _ in $(seq $((count_budget * 10))); do
    got=$(counted)
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  if [ "$got" = "$want" ]; then
    echo "ok: $what: $want connections from GB counted on port $port"
  else
    echo "FAIL: $what: counted $got of $want connections from GB on port $port" >&2
    failed=1
  fi
}
check() {
  if [ "$2" = "$3" ]; then
    echo "ok: $1 ($3)"
  else
    echo "FAIL: $1: want '$3', got '$2'" >&2
    failed=1
  fi
}

step=$SECONDS
start_pod geoip-test-exporter-a
pid=$(podman inspect --format '{{.State.Pid}}' geoip-test-exporter-a)
log=$(podman logs geoip-test-exporter-a 2>&1)
echo "--- log of geoip-test-exporter-a"
echo "$log"
status=$(cat "/proc/$pid/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$status"; }
# Kernels before 6.5 with unprivileged BPF disabled check CAP_BPF on every
# map read, and there the exporter keeps that one; it says which in its log.
want_caps=0000000000000000
grep -q 'with only CAP_BPF' <<<"$log" && want_caps=0000008000000000
check "no CAP_SETUID: it says it stays uid 0" \
  "$(grep -c 'no CAP_SETUID and CAP_SETGID to switch users' <<<"$log")" 1
check "it says which listeners it cannot name at start" \
  "$(grep -c '^listeners: the sockets of [0-9]* processes were unreadable' <<<"$log")" 1
check "its effective capabilities after attaching" "$(field CapEff)" "$want_caps"
check "its permitted capabilities after attaching" "$(field CapPrm)" "$want_caps"
check "no_new_privs" "$(field NoNewPrivs)" 1
connect "$first_count"
expect_count "$first_count" "first pod"
say "first pod: $((SECONDS - step)) s"

# Stopped as the kubelet stops it; the probe stays pinned and counting.
podman stop --time 10 geoip-test-exporter-a >/dev/null
podman rm geoip-test-exporter-a >/dev/null
pinned=$(find "$pins_host" -mindepth 2 -name 'link*' | wc -l)
[ "$pinned" -gt 0 ] || { echo "FAIL: nothing is pinned in $pins_host after the pod stopped" >&2; failed=1; }
connect "$gap_count"
say "$gap_count connections while no exporter ran"

step=$SECONDS
start_pod geoip-test-exporter-b
echo "--- log of geoip-test-exporter-b"
podman logs geoip-test-exporter-b 2>&1
expect_count "$gap_count" "second pod, connections made while no pod ran"
say "second pod: $((SECONDS - step)) s"
exit 0 # cleanup says PASS or FAIL
