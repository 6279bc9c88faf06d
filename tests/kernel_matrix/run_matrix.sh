#!/bin/bash
# Kernel matrix: boots Debian 12's newest 6.1 and 6.12 cloud kernels (see
# fetch_kernels.sh) under QEMU, runs the real exporter in every probe mode
# against a known connection plan, and asserts exact per-country, per-port
# counts. As on a real host the servers run first: one blocking acceptor per
# port, and a prefork server with 64 threads blocked in accept() on one port,
# all started before the exporter; the clients come once it is healthy. It
# also measures each mode's BPF run time per connection over an accept storm
# (kernel.bpf_stats_enabled, read with the host's bpftool copied in).
# One boot per kernel runs every mode; a boot that hangs or crashes is
# retried once for the modes it did not finish. Serial logs stay in
# BUILD_DIR/kernel-matrix/logs/, the tables in BUILD_DIR/kernel-matrix/results.md
# and the reasons for failing cells in BUILD_DIR/kernel-matrix/details.txt.
#
# usage: run_matrix.sh [--smoke] BUILD_DIR
#   BUILD_DIR  CMake build directory holding exporter/ebpf_geoip_exporter and
#              tools/ebpf_geoip_traffic; results go to BUILD_DIR/kernel-matrix/
#   --smoke    boot each kernel with a trivial job (no project binaries) and
#              check that BTF, tracefs, bpffs and the loopback addresses are there
# Environment (optional):
#   KERNEL_MATRIX_KERNELS   kernels to boot (default "6.1 6.12")
#   KERNEL_MATRIX_MODES     probe modes (default "kretprobe fexit tracepoint auto")
#   KERNEL_MATRIX_CACHE     kernel cache (default BUILD_DIR/kernel-matrix/kernels)
#   KERNEL_MATRIX_ACCEL     kvm or tcg (default: kvm on Intel/AMD KVM hosts, else tcg)
#   KERNEL_MATRIX_TIMEOUT   seconds per boot (default 240)
# Exit status: 0 only when every kernel × mode cell passed.
set -euo pipefail

# The mode --bpf.probe=auto must choose on these kernels, whose every mode
# attaches: the first of the documented order (tracepoint, fexit, kretprobe).
expected_auto_mode=tracepoint

smoke=0
if [[ "${1:-}" == --smoke ]]; then
  smoke=1
  shift
fi
if [[ $# -ne 1 ]]; then
  sed -n '/^# usage/,/^# Exit/p' "$0" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
vm_name=kernel_matrix
# shellcheck source=vm_lib.sh
source "$script_dir/vm_lib.sh"
out_dir="$build_dir/kernel-matrix"
cache_dir=${KERNEL_MATRIX_CACHE:-$out_dir/kernels}
read -r -a kernels <<<"${KERNEL_MATRIX_KERNELS:-6.1 6.12}"
read -r -a modes <<<"${KERNEL_MATRIX_MODES:-kretprobe fexit tracepoint auto}"
timeout_s=${KERNEL_MATRIX_TIMEOUT:-240}
exporter="$build_dir/exporter/ebpf_geoip_exporter"
traffic="$build_dir/tools/ebpf_geoip_traffic"
database="$repo_root/data/geo-whois-asn-country.mmdb"
die() { vm_die "$@"; }

# --- The connection plan: the single source of what the VM does and what the
# host expects. One line per client: source address, destination port,
# connections, and the country the bundled database gives the address.
# IPv4 clients connect to 127.0.0.1, IPv6 clients to ::1. Port 8083 listens
# dual-stack, so IPv4 clients there arrive as ::ffff:a.b.c.d. Port 8084 is not
# in --bpf.ports: its connections must not be counted at all. Port 8085 is the
# prefork server's. Port 8086 takes the accept storm whose BPF cost is
# measured; it must be counted exactly too.
counted_ports="8081,8082,8083,8085,8086"
# One server process per line, each started and blocked in accept() before
# the exporter: one acceptor per port, then the prefork server.
prefork_port=8085
prefork_acceptors=64
storm_port=8086
storm_source=81.2.69.142 storm_country=GB storm_count=2000
servers="--listen=127.0.0.1:8081,127.0.0.1:8082,[::]:8083,[::]:8084 --http
--listen=127.0.0.1:$prefork_port --acceptors=$prefork_acceptors --http"
plan='# address              port  count  country
81.2.69.142             8081  5      GB
81.2.69.160             8081  4      GB
81.2.69.142             8082  3      GB
81.2.69.142             8083  2      GB
81.2.69.142             8084  4      GB
138.100.31.225          8081  2      ES
138.100.31.225          8083  3      ES
8.8.8.8                 8082  6      US
8.8.8.8                 8083  1      US
2001:4860:4860::8888    8083  7      US
2a01:4f8::1             8083  3      DE
2a01:4f8::1             8084  2      DE
127.0.0.1               8082  2      private
8.8.8.8                 8085  200    US'

mkdir -p "$out_dir/logs"
rm -f "$out_dir"/logs/*.log
printf '%s\n' "$plan" >"$out_dir/plan.txt"

# Expected series, one line each: country port connections unique_addresses.
awk -v ports="$counted_ports" '
  BEGIN { n = split(ports, p, ","); for (i = 1; i <= n; i++) counted[p[i]] = 1 }
  /^#/ || NF == 0 { next }
  !($2 in counted) { next }
  { key = $4 " " $2; total[key] += $3
    if (!((key, $1) in seen)) { seen[key, $1] = 1; unique[key]++ } }
  END { for (k in total) print k, total[k], unique[k] }
 ' "$out_dir/plan.txt" >"$out_dir/expected.txt"
sort -o "$out_dir/expected.txt" "$out_dir/expected.txt"
# The storm's series is added per mode: the exporter must count what the
# storm's listener accepted. The storm itself checks that those and the
# connections the kernel discarded before accept (its client's reset
# overtook the handshake's last ACK) add up to all it made.
# Connections the plan makes on port(s) matching $1 (an awk regex on the port).
plan_sum() {
  awk -v ports="$1" '!/^#/ && NF && $2 ~ ports { s += $3 } END { print s + 0 }' "$out_dir/plan.txt"
}
expected_main=$(awk -v p="$prefork_port" -v q="$storm_port" '$2 != p && $2 != q {s += $3}
  END {print s}' "$out_dir/expected.txt")
expected_prefork=$(plan_sum "^$prefork_port\$")
uncounted_total=$(awk -v ports="$counted_ports" '
  BEGIN { n = split(ports, p, ","); for (i = 1; i <= n; i++) counted[p[i]] = 1 }
  !/^#/ && NF && !($2 in counted) { s += $3 } END { print s + 0 }' "$out_dir/plan.txt")
# What each server must have accepted: everything aimed at its ports.
server_expected=("$(plan_sum '^808[1-4]$')" "$expected_prefork")

# The plan names each address's country; check it against the database when
# mmdblookup is at hand, so a database update shows up as a clear message.
if command -v mmdblookup >/dev/null; then
  while read -r address _ _ country; do
    [[ "$country" == private ]] && continue
    got=$(mmdblookup --file "$database" --ip "$address" country_code 2>/dev/null |
      sed -n 's/.*"\(.*\)".*/\1/p')
    [[ "$got" == "$country" ]] ||
      die "plan says $address is $country, the bundled database says '${got:-nothing}'"
  done < <(grep -v '^#' "$out_dir/plan.txt" | sort -u -k1,1)
fi

# --- Tools, kernels, initramfs ---------------------------------------------
vm_require_tools
vm_accel_init
vm_fetch_kernels "$cache_dir" "$out_dir/kernels.txt"

root="$out_dir/initramfs"
vm_initramfs_begin "$root" "$script_dir/matrix_job.sh"
cp "$out_dir/plan.txt" "$root/vm/plan.txt"
echo "$counted_ports" >"$root/vm/ports.txt"
printf '%s\n' "$servers" >"$root/vm/servers.txt"
# The clients' flags: one --connect entry per plan line, IPv4 sources to
# 127.0.0.1 and IPv6 sources to ::1, over HTTP so that each client returns
# only after its server accepted.
awk '
  /^#/ || NF == 0 { next }
  { dst = ($1 ~ /:/) ? "[::1]" : "127.0.0.1"
    connect = connect (connect == "" ? "" : ",") $1 ">" dst ":" $2 "*" $3 }
  END { print "--http --connect=" connect " --timeout=80" }
' "$out_dir/plan.txt" >"$root/vm/clients.txt"
echo "--storm=$storm_source>127.0.0.1:$storm_port --count=$storm_count --timeout=80" \
  >"$root/vm/storm.txt"
if [[ $smoke == 0 ]]; then
  vm_copy_binary "$root" "$exporter"
  vm_copy_binary "$root" "$traffic"
  cp "$database" "$root/data/"
  # The cost column reads the kernel's per-program run time with bpftool.
  if bpftool_path=$(command -v bpftool); then
    vm_copy_binary "$root" "$bpftool_path" /usr/local/bin/bpftool
  else
    echo "kernel_matrix: no bpftool on this host (apt-get install bpftool): no cost column" >&2
  fi
fi
vm_pack "$root" "$out_dir/initrd.gz"

# --- Judging ---------------------------------------------------------------
# The "@@M" lines of mode $2 in the boot logged in $1.
mode_section() {
  vm_markers "$1" | sed -n "/^@@M BEGIN mode=$2 /,/^@@M END mode=$2 /p"
}

# True when the boot logged in $1 got to the end of mode $2.
finished() {
  if [[ $smoke == 1 ]]; then
    vm_markers "$1" | grep -q '^@@M SMOKE ok='
  else
    vm_markers "$1" | grep -q "^@@M END mode=$2 "
  fi
}

# Prints the cell for mode $2 of the boot logged in $1: "PASS ..." or
# "FAIL ...", with the counts whenever there are some, and appends the
# reasons for a failure to details.txt.
judge() {
  local log=$1 mode=$2 kernel=$3 section metrics observed problems=()
  if [[ $smoke == 1 ]]; then
    if vm_markers "$log" | grep -q '^@@M SMOKE ok=1'; then echo "PASS smoke"; else echo "FAIL smoke check"; fi
    return
  fi
  section=$(mode_section "$log" "$mode")
  if ! grep -q "^@@M END mode=$mode " <<<"$section"; then
    echo "FAIL no result (hang or crash)"
    return
  fi
  grep -q "^@@M SERVERS mode=$mode ready=1 " <<<"$section" || {
    echo "FAIL servers never all blocked in accept()"
    return
  }
  grep -q "^@@M HEALTHY mode=$mode ok=1" <<<"$section" || {
    echo "FAIL exporter never became healthy"
    return
  }
  grep -q "^@@M TRAFFIC mode=$mode rc=0\$" <<<"$section" ||
    problems+=("traffic tool: $(grep "^@@M TRAFFIC mode=$mode" <<<"$section")")
  local storm storm_accepted=$storm_count storm_discarded=0
  storm=$(grep "^@@M STORM mode=$mode" <<<"$section" || true)
  if [[ "$storm" =~ ^@@M\ STORM\ mode=$mode\ rc=0\ storm\ connections=$storm_count\ accepted=([0-9]+)\ .*\ discarded=([0-9]+)$ ]] &&
    ((BASH_REMATCH[1] + BASH_REMATCH[2] == storm_count)); then
    storm_accepted=${BASH_REMATCH[1]} storm_discarded=${BASH_REMATCH[2]}
  else
    problems+=("storm: ${storm:-no result}")
  fi
  local expected
  expected=$({
    cat "$out_dir/expected.txt"
    echo "$storm_country $storm_port $storm_accepted 1"
  } | sort)
  local n want got
  for n in 1 2; do
    want=${server_expected[n - 1]}
    got=$(sed -n "s/^@@M SERVER mode=$mode n=$n rc=0 connections made=0 accepted=\([0-9]*\)\$/\1/p" \
      <<<"$section")
    [[ "$got" == "$want" ]] || problems+=("server $n accepted ${got:-?}, want $want")
  done
  metrics=$(sed -n "/^@@M METRICS BEGIN mode=$mode\$/,/^@@M METRICS END mode=$mode\$/p" \
    <<<"$section" | sed -n 's/^@@M \(ebpf_geoip_\)/\1/p')
  [[ -n "$metrics" ]] || {
    echo "FAIL no /metrics"
    return
  }
  local chosen
  chosen=$(sed -n 's/^ebpf_geoip_probe_info{mode="\([a-z]*\)"} 1\(\.0*\)\{0,1\}$/\1/p' <<<"$metrics")
  local want_mode=$mode
  [[ $mode == auto ]] && want_mode=$expected_auto_mode
  [[ "$chosen" == "$want_mode" ]] || problems+=("probe mode is ${chosen:-?}, want $want_mode")
  # Observed series in the expected.txt format.
  observed=$(awk '
    function label(name,   m) {
      return match($0, name "=\"[^\"]*\"") ? substr($0, RSTART + length(name) + 2,
        RLENGTH - length(name) - 3) : "?"
    }
    /^ebpf_geoip_(accepted_connections_total|unique_source_addresses)\{/ {
      key = label("country") " " label("port")
      if ($0 ~ /^ebpf_geoip_accepted/) total[key] += $NF; else unique[key] += $NF
      keys[key] = 1
    }
    END { for (k in keys) print k, (k in total ? total[k] : "-"), (k in unique ? unique[k] : "-") }
  ' <<<"$metrics" | sort)
  if [[ "$observed" != "$expected" ]]; then
    # Series as "country port connections unique", "-" where one is missing.
    problems+=("series (country port connections unique) want: $(comm -23 <(echo "$expected") \
      <(echo "$observed") | paste -sd';') got: $(comm -13 <(echo "$expected") \
      <(echo "$observed") | paste -sd';')")
  fi
  # Every connection the servers accepted is attributed to them: the
  # traffic tool's process name, never "unknown".
  local unattributed
  unattributed=$(grep -c '^ebpf_geoip_accepted_connections_total{.*service="unknown"' <<<"$metrics" || true)
  [[ "$unattributed" == 0 ]] || problems+=("$unattributed series with service=\"unknown\"")
  # Debian's stock kernels run every part of the probe: the exporter's
  # fallback for a kernel that refuses an optional program (bytes of open
  # connections, refused connections) must not hide a program it rejects.
  local left_out
  left_out=$(grep -m1 'this kernel refused the' <<<"$section" || true)
  [[ -z "$left_out" ]] || problems+=("a part of the probe did not load: ${left_out#@@M | }")
  local rc
  rc=$(sed -n "s/^@@M EXIT mode=$mode rc=\([0-9]*\)\$/\1/p" <<<"$section")
  [[ "$rc" == 0 ]] || problems+=("exporter exit status ${rc:-?} after SIGTERM")
  local counted prefork cell
  counted=$(awk -v p="$prefork_port" -v q="$storm_port" '$2 != p && $2 != q && $3 != "-" {s += $3}
    END {print s + 0}' <<<"$observed")
  prefork=$(awk -v p="$prefork_port" '$2 == p && $3 != "-" {s += $3} END {print s + 0}' <<<"$observed")
  cell="$counted/$expected_main, prefork $prefork/$expected_prefork"
  [[ $mode == auto ]] && cell+=" (${chosen:-?})"
  ((storm_discarded == 0)) || cell+=", storm $storm_accepted + $storm_discarded discarded before accept"
  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "PASS $cell"
  else
    echo "FAIL $cell"
    local problem
    for problem in "${problems[@]}"; do
      echo "$kernel $mode: $problem" >>"$out_dir/details.txt"
    done
  fi
}

# Prints mode $2's BPF cost in the boot logged in $1: run time (ns) and
# program runs per storm connection, summed over every program, from the
# bpftool snapshots taken before and after the storm. With $3 = programs,
# prints instead each program's "name ns/run runs/connection".
cost() {
  local log=$1 mode=$2 what=${3:-total} section
  section=$(mode_section "$log" "$mode")
  sed -n "/^@@M STATS BEGIN mode=$mode\$/,/^@@M STATS END mode=$mode\$/p" <<<"$section" |
    awk -v made="$storm_count" -v what="$what" '
      $2 == "before" { t0[$3] = $5; c0[$3] = $6 }
      $2 == "after" { name[$3] = $4; t1[$3] = $5; c1[$3] = $6 }
      END {
        for (id in t1) {
          dt = t1[id] - t0[id]; dc = c1[id] - c0[id]; t += dt; c += dc
          if (what == "programs" && dc > 0)
            printf "%s %.0f ns/run × %.1f, ", name[id], dt / dc, dc / made
        }
        if (what != "programs") {
          if (c > 0) printf "%.0f ns (%.1f runs)\n", t / made, c / made
          else print "n/a"
        }
      }' | sed 's/, $//'
}

# --- Booting ---------------------------------------------------------------
# The command line of attempt $1: the modes the boot logged in $2 (the
# previous attempt) did not finish, or every mode on the first attempt.
next_modes() {
  local attempt=$1 previous=$2 mode pending=()
  for mode in "${modes[@]}"; do
    if [[ -z "$previous" ]] || ! finished "$previous" "$mode"; then pending+=("$mode"); fi
  done
  [[ ${#pending[@]} -eq 0 ]] && return
  if [[ $smoke == 1 ]]; then
    echo "matrix_smoke=1"
  else
    echo "matrix_modes=$(IFS=,; echo "${pending[*]}")"
  fi
}

[[ $smoke == 1 ]] && modes=(smoke)
declare -A cell cost_cell programs
failed=0
rm -f "$out_dir/details.txt"
for kernel in "${kernels[@]}"; do
  [[ -s "$cache_dir/$kernel/vmlinuz" ]] || die "no cached kernel $kernel"
  vm_boot_with_retry "$cache_dir/$kernel/vmlinuz" "$out_dir/initrd.gz" \
    "$out_dir/logs/$kernel" "$timeout_s" 1024 next_modes
  for log in "${vm_logs[@]}"; do
    # Seconds each mode took inside the guest, from its BEGIN and END uptimes.
    per_mode=$(vm_markers "$log" | awk '
      /^@@M BEGIN mode=/ { split($3, m, "="); split($4, u, "="); start[m[2]] = u[2] }
      /^@@M END mode=/ { split($3, m, "="); split($4, u, "=")
                         printf "%s %.1fs, ", m[2], u[2] - start[m[2]] }')
    [[ -n "$per_mode" ]] && vm_timings+=("  $(basename "$log" .log) in the guest: ${per_mode%, }")
  done
  for mode in "${modes[@]}"; do
    # The log of the attempt that finished the mode, else the last one.
    judged=${vm_logs[-1]}
    for log in "${vm_logs[@]}"; do
      if finished "$log" "$mode"; then judged=$log; break; fi
    done
    cell[$kernel,$mode]=$(judge "$judged" "$mode" "$kernel")
    # shellcheck disable=SC2034  # read through table's nameref
    cost_cell[$kernel,$mode]=$(cost "$judged" "$mode")
    programs[$kernel,$mode]=$(cost "$judged" "$mode" programs)
    [[ ${cell[$kernel,$mode]} == PASS* ]] || failed=1
  done
done

# --- Report ----------------------------------------------------------------
# Prints a markdown table, kernels by modes, of the associative array named $1.
table() {
  local -n cells=$1
  printf '| kernel |'
  for mode in "${modes[@]}"; do printf ' %s |' "$mode"; done
  echo
  printf '|---|'
  for _ in "${modes[@]}"; do printf -- '---|'; done
  echo
  for kernel in "${kernels[@]}"; do
    printf '| %s |' "$(vm_kernel_label "$out_dir/kernels.txt" "$kernel")"
    for mode in "${modes[@]}"; do printf ' %s |' "${cells[$kernel,$mode]:-FAIL not run}"; done
    echo
  done
}
{
  echo "Generated by \`tests/kernel_matrix/run_matrix.sh\` on $(date -u +%Y-%m-%d):"
  echo "the real exporter and bundled database inside QEMU on Debian 12's stock cloud"
  echo "kernels. The servers start first and block in accept(): one acceptor per port,"
  echo "and a prefork server with $prefork_acceptors acceptor threads on port $prefork_port; then the"
  echo "exporter; then the clients. Each cell: connections counted / expected over"
  echo "$(awk -v p="$prefork_port" -v q="$storm_port" '$2 != p && $2 != q' "$out_dir/expected.txt" |
    wc -l) country × port series (exact counts and unique sources), plus"
  echo "$uncounted_total connections to a port outside \`--bpf.ports\` that must stay uncounted,"
  echo "then the prefork server's $expected_prefork connections from one address. The"
  echo "$storm_count connections of the cost measurement's storm must be counted exactly too:"
  echo "all its listener accepted. A connection the kernel discards before accept (the"
  echo "client's reset overtook the handshake's last ACK) is shown in the cell, not counted."
  [[ " ${modes[*]} " == *" auto "* ]] &&
    echo "\`auto\` must choose \`$expected_auto_mode\`; the mode it chose is in parentheses."
  echo
  table cell
  if [[ $smoke == 0 ]]; then
    echo
    echo "BPF cost per connection, from \`kernel.bpf_stats_enabled\` (bpftool): the run"
    echo "time of every loaded program during an accept storm of $storm_count connections"
    echo "(connect, accept, close with RST) on a watched port, divided by $storm_count, and"
    echo "program runs per connection. Measured in QEMU with $vm_accel acceleration (tcg is"
    echo "software emulation: there only the ratios between modes carry over to real"
    echo "hardware, and auto beside the mode it chose shows the noise)."
    echo
    table cost_cell
    echo
    echo "Per program (ns per run × runs per connection):"
    echo
    for kernel in "${kernels[@]}"; do
      for mode in "${modes[@]}"; do
        echo "- $kernel $mode: ${programs[$kernel,$mode]:-n/a}"
      done
    done
  fi
} >"$out_dir/results.md"
cat "$out_dir/results.md"
echo
printf 'boot: %s\n' "${vm_timings[@]}"
if [[ $failed == 1 ]]; then
  # FAIL on each reason's line: scripts/test's failure digest keeps those.
  [[ -s "$out_dir/details.txt" ]] && { echo; sed 's/^/FAIL /' "$out_dir/details.txt"; }
  echo "kernel_matrix: FAILED; serial logs in $out_dir/logs/" >&2
  exit 1
fi
echo "kernel_matrix: all cells passed"
