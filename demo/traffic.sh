#!/usr/bin/env bash
# Runs the demo services inside a private network namespace and sends them
# bounded traffic from the world addresses in demo/world-addresses.txt.
#
#   sudo demo/traffic.sh [--netns NAME] [--keep-running] [traffic.py options]
#
# The namespace has only a loopback interface, with the world addresses on
# it, so nothing leaves the machine. The kernel probe is global: an exporter
# running outside the namespace (--bpf.ports=8081,8082,8083) counts these
# connections. The namespace and the services are removed on exit, also on
# Ctrl-C. With --keep-running the services stay up after the traffic until
# Ctrl-C; more traffic can then be sent with
#   ip netns exec NAME python3 demo/traffic.py
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
netns="geoip-demo"
keep_running=0
traffic_args=()
while (($#)); do
  case "$1" in
    --netns) netns="$2"; shift 2 ;;
    --netns=*) netns="${1#*=}"; shift ;;
    --keep-running) keep_running=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
               python3 "$here/traffic.py" --help; exit 0 ;;
    *) traffic_args+=("$1"); shift ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  echo "traffic.sh: creating a network namespace needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN)" >&2
  exit 1
fi
if [[ -e /run/netns/$netns ]]; then
  echo "traffic.sh: network namespace $netns already exists; delete it (ip netns del $netns) or pass --netns" >&2
  exit 1
fi

services_pid=""
traffic_pid=""
cleanup() {
  trap - EXIT INT TERM
  # Both are waited for: one left running would outlive this script.
  local pid
  for pid in $traffic_pid $services_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $traffic_pid $services_pid; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$netns" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$netns"
ip -n "$netns" link set lo up
ip netns exec "$netns" python3 "$here/services.py" 8081 8082 8083 &
services_pid=$!

# In the background so that a signal interrupts `wait` and runs the trap at once.
ip netns exec "$netns" python3 "$here/traffic.py" --setup "${traffic_args[@]}" &
traffic_pid=$!
status=0
wait "$traffic_pid" || status=$?
traffic_pid=""

if ((keep_running)); then
  echo "traffic.sh: traffic done; demo services stay up in network namespace $netns until Ctrl-C"
  wait "$services_pid" || true
fi
exit "$status"
