# shellcheck shell=sh
# Kernel-matrix job, sourced by /init (init.sh) inside QEMU: runs the real
# exporter once per probe mode named by matrix_modes= on the kernel command
# line against the connection plan run_matrix.sh wrote to /vm:
#   servers.txt  one line of ebpf_geoip_traffic flags per server process
#   clients.txt  the flags of the one client run
#   storm.txt    the flags of the accept storm whose BPF cost is measured
#   ports.txt    the exporter's --bpf.ports
#   plan.txt     the plan (its addresses go on lo)
# Order, as on a real host: the servers start first and block in accept(),
# then the exporter, then the clients. matrix_smoke=1 only checks that the
# kernel offers what the probes need.

# The public source addresses of the plan, on lo.
for address in $(awk '!/^#/ && NF {print $1}' /vm/plan.txt | sort -u); do
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
  return 0
fi

# Per-program run counts and run time for the cost table.
echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
# Prints every loaded BPF program that has run as "id name run_time_ns
# run_cnt", one a line.
program_stats() {
  command -v bpftool >/dev/null || return 0
  bpftool prog show 2>/dev/null | awk '
    /^[0-9]+: / { id = $1; sub(":", "", id); name = "?"; t = c = ""
      for (i = 2; i < NF; i++) {
        if ($i == "name") name = $(i + 1)
        if ($i == "run_time_ns") t = $(i + 1)
        if ($i == "run_cnt") c = $(i + 1)
      }
      if (t != "") print id, name, t, c }'
}

ports=$(cat /vm/ports.txt)
set -f # the traffic flags hold '*'

for mode in $(cmdline_value matrix_modes | tr ',' ' '); do
  say "BEGIN mode=$mode uptime=$(uptime_s)"
  # The exporter may pin its maps and probe under /sys/fs/bpf and reuse them
  # on the next start: each mode starts from nothing.
  rm -rf /sys/fs/bpf/ebpf_geoip

  # The servers first, each blocked in accept() before the exporter starts.
  # `listening` comes only once every acceptor thread is in accept().
  server_pids=""
  n=0
  ready=1
  while read -r flags; do
    n=$((n + 1))
    # shellcheck disable=SC2086  # one flag per word
    /bin/ebpf_geoip_traffic $flags --timeout=150 >/tmp/server$n.out 2>/tmp/server$n.err &
    server_pids="$server_pids $!"
    await_listening /tmp/server$n.err 150 || ready=0
  done </vm/servers.txt
  say "SERVERS mode=$mode ready=$ready count=$n"

  /bin/ebpf_geoip_exporter --bpf.probe="$mode" \
    --web.listen-address=127.0.0.1:19100 --bpf.ports="$ports" \
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

  if [ $healthy = 1 ] && [ $ready = 1 ]; then
    # HTTP: a client finishes only after its server accepted and answered,
    # so every accept has returned when the client run ends.
    # shellcheck disable=SC2046  # one flag per word
    timeout 90 /bin/ebpf_geoip_traffic $(cat /vm/clients.txt) >/tmp/traffic.log 2>&1
    say "TRAFFIC mode=$mode rc=$?"
    say_file /tmp/traffic.log
    # The cost: BPF run time over an accept storm on a watched port, after
    # the plan has warmed every code path (TCG translates code on first use).
    program_stats >/tmp/stats.before
    # shellcheck disable=SC2046  # one flag per word
    timeout 90 /bin/ebpf_geoip_traffic $(cat /vm/storm.txt) >/tmp/storm.log 2>/tmp/storm.err
    say "STORM mode=$mode rc=$? $(head -n 1 /tmp/storm.log)"
    program_stats >/tmp/stats.after
    say_file /tmp/storm.err
    say "STATS BEGIN mode=$mode"
    sed 's/^/@@M before /' /tmp/stats.before
    sed 's/^/@@M after /' /tmp/stats.after
    say "STATS END mode=$mode"
    sleep 1
    if timeout 5 wget -q -O /tmp/metrics http://127.0.0.1:19100/metrics; then
      say "METRICS BEGIN mode=$mode"
      grep '^ebpf_geoip_' /tmp/metrics | sed 's/^/@@M /'
      say "METRICS END mode=$mode"
    else
      say "METRICS FETCH FAILED mode=$mode"
    fi
  fi

  # Each server prints "connections made=0 accepted=N" when it stops.
  n=0
  for server in $server_pids; do
    n=$((n + 1))
    kill -TERM "$server" 2>/dev/null
    wait "$server"
    say "SERVER mode=$mode n=$n rc=$? $(cat /tmp/server$n.out)"
    grep -vx listening /tmp/server$n.err | say_file
  done

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
  say "END mode=$mode uptime=$(uptime_s)"
done
set +f
