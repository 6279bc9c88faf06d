#!/bin/busybox sh
# /init of the kernel-matrix initramfs (busybox ash, PID 1 inside QEMU).
# Runs the real exporter once per probe mode named by matrix_modes= on the
# kernel command line, drives the connection plan /matrix/plan.txt through the
# traffic tool, and prints everything the host asserts on the serial console
# as lines starting with "@@M ". It always ends with poweroff, so QEMU exits.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
mkdir -p /tmp

say() { echo "@@M $*"; }

# Prints a file with every line prefixed, so the host can tell our output
# from kernel messages on the same console.
say_file() { sed 's/^/@@M | /' "$@"; }

finish() {
  say "DONE"
  sync
  poweroff -f
  sleep 10
}

cmdline_value() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1"=*) echo "${word#*=}" ;; esac
  done
}

echo # the firmware leaves the cursor mid-line
say "INIT kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

# Loopback plus the public source addresses of the plan. Nothing can leave:
# QEMU runs with -nic none, so lo is the only interface.
ip link set lo up
for knob in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 >"$knob"; done
for address in $(awk '!/^#/ && NF {print $1}' /matrix/plan.txt | sort -u); do
  case "$address" in
    127.*|::1) ;;
    *:*) ip -6 addr add "$address/128" dev lo ;;
    *) ip addr add "$address/32" dev lo ;;
  esac
done

if [ "$(cmdline_value matrix_smoke)" = 1 ]; then
  # Pipeline check without the exporter: what the probes need is there.
  ls -l /sys/kernel/btf/vmlinux | say_file
  grep -E ' (tracefs|bpf) ' /proc/mounts | say_file
  ip addr show dev lo | say_file
  ok=1
  [ -s /sys/kernel/btf/vmlinux ] || ok=0
  [ -d /sys/kernel/tracing/events/sock/inet_sock_set_state ] || ok=0
  grep -q ' /sys/fs/bpf bpf ' /proc/mounts || ok=0
  ip addr show dev lo | grep -q tentative && ok=0
  say "SMOKE ok=$ok"
  finish
fi

ports=$(cat /matrix/ports.txt)
set -f # the traffic flags hold '*'

for mode in $(cmdline_value matrix_modes | tr ',' ' '); do
  say "BEGIN mode=$mode uptime=$(cut -d' ' -f1 /proc/uptime)"
  # The exporter pins its maps and probe under /sys/fs/bpf by default and
  # reuses them on the next start: each mode starts from nothing.
  rm -rf /sys/fs/bpf/ebpf_geoip
  /bin/ebpf_geoip_exporter --probe="$mode" \
    --web.listen-address=127.0.0.1:19100 --ports="$ports" \
    --geoip.database=/data/geo-whois-asn-country.mmdb \
    --bpf.drain-interval=200ms >/tmp/exporter.log 2>&1 &
  pid=$!

  healthy=0
  i=0
  while [ $i -lt 100 ]; do
    if timeout 2 wget -q -O /dev/null http://127.0.0.1:19100/-/healthy 2>/dev/null; then
      healthy=1
      break
    fi
    # Stop waiting once the exporter has exited (reaped, or a zombie).
    [ -e /proc/$pid/status ] || break
    grep -q '^State:.*Z' /proc/$pid/status && break
    usleep 100000
    i=$((i + 1))
  done
  say "HEALTHY mode=$mode ok=$healthy"

  if [ $healthy = 1 ]; then
    # shellcheck disable=SC2046  # one flag per word
    timeout 60 /bin/ebpf_geoip_traffic $(cat /matrix/traffic_flags.txt) \
      >/tmp/traffic.log 2>&1
    say "TRAFFIC mode=$mode rc=$?"
    say_file /tmp/traffic.log
    sleep 1
    if timeout 5 wget -q -O /tmp/metrics http://127.0.0.1:19100/metrics; then
      say "METRICS BEGIN mode=$mode"
      grep '^ebpf_geoip_' /tmp/metrics | sed 's/^/@@M /'
      say "METRICS END mode=$mode"
    else
      say "METRICS FETCH FAILED mode=$mode"
    fi
  fi

  # SIGTERM must end the exporter cleanly; a watchdog kills it after 10 s.
  kill -TERM $pid 2>/dev/null
  (sleep 10; kill -KILL $pid 2>/dev/null) &
  watchdog=$!
  wait $pid
  rc=$?
  kill $watchdog 2>/dev/null
  say "EXPORTER LOG mode=$mode"
  tail -n 40 /tmp/exporter.log | say_file
  say "EXIT mode=$mode rc=$rc"
  say "END mode=$mode uptime=$(cut -d' ' -f1 /proc/uptime)"
done

finish
