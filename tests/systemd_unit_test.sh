#!/usr/bin/env bash
# The shipped systemd files, checked without a running systemd (this
# container has none as PID 1):
#   1. systemd-analyze verify on the unit (its ExecStart pointed at the built
#      binary, which verify requires to exist): no complaints at all;
#   2. systemd-analyze security --offline: the exposure score, at most 2.5
#      (--threshold counts in tenths);
#   3. the sysusers file parses (systemd-sysusers --dry-run);
#   4. every flag in the default file, ARGS and the commented examples, is
#      one the exporter accepts; ExecStart pins explicitly (not through
#      --bpf.pin-path=auto's detection), at the directory ExecStartPre
#      prepares and ReadWritePaths opens;
#   5. as root: the exporter run with exactly the unit's capabilities
#      (AmbientCapabilities, CapabilityBoundingSet, NoNewPrivileges) as an
#      unprivileged user, with the pin directory prepared as the unit's
#      ExecStartPre does on a bpffs mounted mode 0700 as systemd mounts it,
#      attaches the probe, pins, counts exact loopback connections and ends
#      with no capabilities. Skipped (and said so) when not root.
#
# usage: systemd_unit_test.sh EXPORTER_BINARY DATABASE
set -euo pipefail

exporter_bin=$(realpath "$1")
database=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
unit=$repo/deploy/systemd/ebpf_geoip_exporter.service
defaults=$repo/deploy/systemd/ebpf_geoip_exporter.default
sysusers=$repo/deploy/systemd/ebpf_geoip_exporter.sysusers
work=$(mktemp -d /tmp/systemd_unit_test.XXXXXX)
exporter_pid=
bpffs=

cleanup() {
  if [ -n "$exporter_pid" ]; then kill "$exporter_pid" 2>/dev/null || true; wait "$exporter_pid" 2>/dev/null || true; fi
  # Unmounting the private bpffs drops its pins, which detaches the probe.
  if [ -n "$bpffs" ]; then umount "$bpffs" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: apt-get install systemd" >&2; exit 1; }

# 1. verify
sed "s|^ExecStart=/usr/local/bin/ebpf_geoip_exporter |ExecStart=$exporter_bin |" "$unit" \
  >"$work/ebpf_geoip_exporter.service"
grep -q "^ExecStart=$exporter_bin " "$work/ebpf_geoip_exporter.service" ||
  { echo "the unit's ExecStart is not /usr/local/bin/ebpf_geoip_exporter \$ARGS" >&2; exit 1; }
if ! out=$(systemd-analyze verify --man=no "$work/ebpf_geoip_exporter.service" 2>&1) || [ -n "$out" ]; then
  echo "systemd-analyze verify complains:" >&2
  echo "$out" >&2
  exit 1
fi
echo "ok: systemd-analyze verify: no complaints"

# 2. security
out=$(systemd-analyze security --offline=true --threshold=25 "$work/ebpf_geoip_exporter.service" 2>&1) ||
  { echo "$out" | tail -n 30 >&2; echo "exposure above 2.5 (threshold 25 in tenths)" >&2; exit 1; }
echo "ok: $(grep -o 'Overall exposure level.*' <<<"$out")"

# 3. sysusers
systemd-sysusers --dry-run "$sysusers" >/dev/null 2>&1 ||
  { systemd-sysusers --dry-run "$sysusers" >&2; echo "sysusers file rejected" >&2; exit 1; }
grep -q "^User=$(awk '/^u /{print $2}' "$sysusers")$" "$unit" ||
  { echo "the sysusers file and the unit name different users" >&2; exit 1; }
echo "ok: sysusers file parses and creates the unit's user"

# 4. the default file's flags
ARGS=
# shellcheck disable=SC1090
. "$defaults"
[ -n "$ARGS" ] || { echo "no ARGS in $defaults" >&2; exit 1; }
# Flags before --version are parsed (names and values checked), then it exits.
# shellcheck disable=SC2086
"$exporter_bin" $ARGS --version >/dev/null || { echo "ARGS rejected: $ARGS" >&2; exit 1; }
examples=0
while read -r flag; do
  "$exporter_bin" "$flag" --version >/dev/null || { echo "example flag rejected: $flag" >&2; exit 1; }
  examples=$((examples + 1))
done < <(sed -n 's/^#  *\(--[a-z.-]*=[^ ]*\)$/\1/p' "$defaults")
[ "$examples" -ge 4 ] || { echo "found only $examples example flags in $defaults" >&2; exit 1; }
echo "ok: ARGS and $examples example flags in the default file are accepted"
pin_path=$(sed -n 's|^ExecStart=[^ ]* .*--bpf\.pin-path=\([^ ]*\).*|\1|p' "$unit")
[ -n "$pin_path" ] || { echo "ExecStart does not pass --bpf.pin-path=DIR" >&2; exit 1; }
grep -q "^ExecStartPre=+/usr/bin/install -d .* $pin_path$" "$unit" ||
  { echo "no ExecStartPre prepares $pin_path" >&2; exit 1; }
grep -q "^ReadWritePaths=-$pin_path$" "$unit" || { echo "ReadWritePaths does not open $pin_path" >&2; exit 1; }
echo "ok: ExecStart pins at $pin_path, which ExecStartPre prepares and ReadWritePaths opens"

# 5. the unit's capabilities, for real
if [ "$(id -u)" != 0 ]; then
  echo "skipped: running with the unit's capabilities (needs root)"
  exit 0
fi
# CAP_BPF CAP_PERFMON -> +bpf,+perfmon
caps_of() { sed -n "s/^$1=//p" "$unit" | tr ' ' '\n' | sed 's/^CAP_/+/' | tr 'A-Z' 'a-z' | paste -sd, -; }
ambient=$(caps_of AmbientCapabilities)
bounding=$(caps_of CapabilityBoundingSet)
[ -n "$ambient" ] && [ "$ambient" = "$bounding" ] ||
  { echo "AmbientCapabilities ($ambient) and CapabilityBoundingSet ($bounding) differ" >&2; exit 1; }
grep -q '^NoNewPrivileges=yes$' "$unit" || { echo "NoNewPrivileges=yes missing" >&2; exit 1; }

bpffs=$work/bpffs
mkdir "$bpffs"
mount -t bpf -o mode=0700 bpf "$bpffs"
# What the unit's ExecStartPre lines do, on this private bpffs.
install -d -o nobody -g nogroup -m 0700 "$bpffs/ebpf_geoip"
chmod o+x "$bpffs"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chmod 0755 "$work"
setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
  --inh-caps="-all,$ambient" --ambient-caps="$ambient" --bounding-set="-all,$bounding" \
  "$exporter_bin" --web.listen-address=127.0.0.1:0 --geoip.database="$database" \
  --bpf.ports="$port" --bpf.drain-interval=100ms --bpf.pin-path="$bpffs/ebpf_geoip" \
  2>"$work/exporter.log" &
exporter_pid=$!
# Its start-up line (docs/API.md) names the port it bound.
metrics_port=$(python3 "$repo/tests/support/exporter_process.py" port "$work/exporter.log" \
  --pid "$exporter_pid" --timeout 15) ||
  { echo "the exporter did not start with the unit's capabilities" >&2; exit 1; }
grep '^probe mode:' "$work/exporter.log"
[ -e "$bpffs/ebpf_geoip/link" ] || { cat "$work/exporter.log" >&2; echo "no pinned link" >&2; exit 1; }
echo "ok: probe attached and pinned as uid nobody with only $ambient"

# 25 loopback connections to the watched port (a listener that accepts them).
python3 - "$port" <<'EOF'
import socket, sys
port = int(sys.argv[1])
server = socket.socket()
server.bind(("127.0.0.1", port))
server.listen(64)
for _ in range(25):
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = server.accept()
    accepted.close()
    client.close()
EOF
counted=
for _ in $(seq 50); do
  counted=$(curl --silent --noproxy '*' --max-time 5 "http://127.0.0.1:$metrics_port/metrics" |
    sed -n "s/^ebpf_geoip_accepted_connections_total{.*port=\"$port\".*} \([0-9.e+]*\)$/\1/p" |
    awk '{ s += $1 } END { print s + 0 }')
  [ "$counted" = 25 ] && break
  sleep 0.1
done
[ "$counted" = 25 ] || { echo "counted $counted of 25 connections" >&2; exit 1; }
echo "ok: 25 of 25 connections counted"

status=$(grep -E '^(Uid|CapEff|CapPrm|CapAmb):' "/proc/$exporter_pid/status" | tr -s '\t ' ' ' | paste -sd' ' -)
echo "exporter: $status"
grep -q '^Uid:[[:space:]]65534[[:space:]]' "/proc/$exporter_pid/status" || { echo "not running as nobody" >&2; exit 1; }
# Before Linux 6.5 reading a map already held still needs CAP_BPF while
# kernel.unprivileged_bpf_disabled is set, so the exporter keeps that one.
allowed=0000000000000000
if [ "$(printf '%s\n' 6.5 "$(uname -r | cut -d- -f1)" | sort -V | head -1)" != 6.5 ]; then
  allowed="(0000000000000000|0000008000000000)"
fi
for cap in CapEff CapPrm CapAmb; do
  grep -qE "^$cap:[[:space:]]$allowed$" "/proc/$exporter_pid/status" ||
    { echo "$cap holds more than it may after start" >&2; exit 1; }
done
echo "ok: after start the exporter holds no capabilities (kernel $(uname -r))"
echo "all systemd unit checks passed"
