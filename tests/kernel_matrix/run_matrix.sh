#!/bin/bash
# Kernel matrix: boots Debian 12's newest 6.1 and 6.12 cloud kernels (see
# fetch_kernels.sh) under QEMU, runs the real exporter in every probe mode
# against a known connection plan, and asserts exact per-country, per-port
# counts. One boot per kernel runs every mode; a boot that hangs or crashes
# is retried once for the modes it did not finish. Serial logs stay in
# BUILD_DIR/kernel-matrix/logs/, the table in BUILD_DIR/kernel-matrix/results.md.
#
# usage: run_matrix.sh [--smoke] BUILD_DIR
#   BUILD_DIR  CMake build directory holding exporter/ebpf_geoip_exporter and
#              tools/ebpf_geoip_traffic; results go to BUILD_DIR/kernel-matrix/
#   --smoke    boot each kernel with a trivial init (no project binaries) and
#              check that BTF, tracefs, bpffs and the loopback addresses are there
# Environment (optional):
#   KERNEL_MATRIX_KERNELS   kernels to boot (default "6.1 6.12")
#   KERNEL_MATRIX_MODES     probe modes (default "kprobe fexit tracepoint auto")
#   KERNEL_MATRIX_CACHE     kernel cache (default BUILD_DIR/kernel-matrix/kernels)
#   KERNEL_MATRIX_ACCEL     kvm or tcg (default: kvm on Intel/AMD KVM hosts, else tcg)
#   KERNEL_MATRIX_TIMEOUT   seconds per boot (default 150 with KVM, 180 with TCG)
# Exit status: 0 only when every kernel × mode cell passed.
set -euo pipefail

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
out_dir="$build_dir/kernel-matrix"
cache_dir=${KERNEL_MATRIX_CACHE:-$out_dir/kernels}
read -r -a kernels <<<"${KERNEL_MATRIX_KERNELS:-6.1 6.12}"
read -r -a modes <<<"${KERNEL_MATRIX_MODES:-kprobe fexit tracepoint auto}"
exporter="$build_dir/exporter/ebpf_geoip_exporter"
traffic="$build_dir/tools/ebpf_geoip_traffic"
database="$repo_root/data/geo-whois-asn-country.mmdb"

die() {
  echo "kernel_matrix: ERROR: $*" >&2
  exit 1
}

# --- The connection plan: the single source of what the VM does and what the
# host expects. One line per client: source address, destination port,
# connections, and the country the bundled database gives the address.
# IPv4 clients connect to 127.0.0.1, IPv6 clients to ::1. Port 8083 listens
# dual-stack, so IPv4 clients there arrive as ::ffff:a.b.c.d. Port 8084 is not
# in --ports: its connections must not be counted at all.
counted_ports="8081,8082,8083"
listeners="127.0.0.1:8081 127.0.0.1:8082 [::]:8083 [::]:8084"
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
127.0.0.1               8082  2      private'

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
' "$out_dir/plan.txt" | sort >"$out_dir/expected.txt"
expected_total=$(awk '{s += $3} END {print s}' "$out_dir/expected.txt")
uncounted_total=$(awk -v ports="$counted_ports" '
  BEGIN { n = split(ports, p, ","); for (i = 1; i <= n; i++) counted[p[i]] = 1 }
  !/^#/ && NF && !($2 in counted) { s += $3 } END { print s + 0 }' "$out_dir/plan.txt")

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

# --- Tools and kernels -----------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[[ -x /bin/busybox && "$(/bin/busybox --list)" == *$'\n'cpio$'\n'* ]] ||
  missing+=(busybox-static)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "kernel_matrix: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
fi
[[ "$(ldd /bin/busybox 2>&1 || true)" == *"not a dynamic executable"* ]] ||
  die "/bin/busybox is not the static build (install busybox-static)"

"$script_dir/fetch_kernels.sh" "$cache_dir" >"$out_dir/kernels.txt" ||
  die "could not fetch the kernels; the matrix cannot run"

if [[ $smoke == 0 ]]; then
  for binary in "$exporter" "$traffic"; do
    [[ -x "$binary" ]] || die "$binary is missing: build it first"
  done
fi

# --- Initramfs -------------------------------------------------------------
root="$out_dir/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,data,matrix,lib64}
cp /bin/busybox "$root/bin/busybox"
cp "$script_dir/init.sh" "$root/init"
chmod 755 "$root/init"
printf '%s\n' "$plan" >"$root/matrix/plan.txt"
echo "$counted_ports" >"$root/matrix/ports.txt"
# The traffic tool's flags: the listeners and one --connect entry per plan
# line, IPv4 sources to 127.0.0.1 and IPv6 sources to ::1.
awk -v listeners="$listeners" '
  /^#/ || NF == 0 { next }
  { dst = ($1 ~ /:/) ? "[::1]" : "127.0.0.1"
    connect = connect (connect == "" ? "" : ",") $1 ">" dst ":" $2 "*" $3 }
  END { gsub(/ /, ",", listeners)
        print "--listen=" listeners, "--connect=" connect, "--timeout=50" }
' "$out_dir/plan.txt" >"$root/matrix/traffic_flags.txt"
# The exporter gives up root for --runas=nobody once the probe is attached.
mkdir -p "$root/etc"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
if [[ $EUID -eq 0 ]]; then
  mknod -m 600 "$root/dev/console" c 5 1
fi

# Copies a dynamically linked binary to /bin with every library ldd names,
# at the same path, and the dynamic loader.
copy_binary() {
  local binary=$1
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$root/bin/$(basename "$binary")" "$binary"
  else
    cp "$binary" "$root/bin/"
  fi
  local library
  while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
  done < <(ldd "$binary" | awk '/=> \// {print $3} /^\t\// {print $1}')
}
if [[ $smoke == 0 ]]; then
  copy_binary "$exporter"
  copy_binary "$traffic"
  cp "$database" "$root/data/"
fi
(cd "$root" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) |
  gzip -1 >"$out_dir/initrd.gz"

# --- Booting ---------------------------------------------------------------
# KVM only on a host with Intel or AMD virtualisation: a /dev/kvm served by
# kvm_pvm (this project's cloud machines) runs only PVM-enabled guest kernels
# and stops Debian's stock kernels with "KVM internal error". TCG boots them
# in about two seconds.
accel=${KERNEL_MATRIX_ACCEL:-}
if [[ -z "$accel" ]]; then
  accel=tcg
  if [[ -r /dev/kvm && -w /dev/kvm ]] && [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
    accel=kvm
  fi
fi
if [[ $accel == kvm ]]; then
  accel_flags=(-enable-kvm -cpu host)
  timeout_s=${KERNEL_MATRIX_TIMEOUT:-150}
else
  # Without cx16: QEMU 7.2's TCG mis-emulates the per-CPU cmpxchg16b of the
  # 6.12 slab allocator, so about one boot in three died with a double fault
  # or a NULL dereference; without the feature 0 of 74 boots failed.
  accel_flags=(-accel tcg -cpu "qemu64,-cx16")
  timeout_s=${KERNEL_MATRIX_TIMEOUT:-180}
fi

# Boots kernel $1 running modes $2 (comma separated) and writes the serial
# console to $3. Prints the seconds the boot took and QEMU's exit status.
boot() {
  local kernel=$1 log=$3 extra="matrix_modes=$2" start rc
  [[ $smoke == 1 ]] && extra="matrix_smoke=1"
  start=$(date +%s.%N)
  set +e
  # -nic none: no network device at all; the guest has only loopback.
  timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 "${accel_flags[@]}" \
    -m 1024 -smp 2 -nographic -no-reboot -nic none \
    -kernel "$cache_dir/$kernel/vmlinuz" -initrd "$out_dir/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet $extra" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  awk -v start="$start" -v end="$(date +%s.%N)" -v rc="$rc" \
    'BEGIN { printf "%.1f %d\n", end - start, rc }'
}

# Prints "PASS detail" or "FAIL reason" for mode $2 of the boot logged in $1.
judge() {
  local log=$1 mode=$2 section metrics
  section=$(tr -d '\r' <"$log" | sed -n "/^@@M BEGIN mode=$mode /,/^@@M END mode=$mode /p")
  if [[ $smoke == 1 ]]; then
    if grep -aq '^@@M SMOKE ok=1' "$log"; then echo "PASS smoke"; else echo "FAIL smoke check"; fi
    return
  fi
  if ! grep -q "^@@M END mode=$mode " <<<"$section"; then
    echo "FAIL no result (hang or crash)"
    return
  fi
  grep -q "^@@M HEALTHY mode=$mode ok=1" <<<"$section" || {
    echo "FAIL exporter never became healthy"
    return
  }
  grep -q "^@@M TRAFFIC mode=$mode rc=0\$" <<<"$section" || {
    echo "FAIL traffic tool: $(grep "^@@M TRAFFIC mode=$mode" <<<"$section")"
    return
  }
  metrics=$(sed -n "/^@@M METRICS BEGIN mode=$mode\$/,/^@@M METRICS END mode=$mode\$/p" \
    <<<"$section" | sed -n 's/^@@M \(ebpf_geoip_\)/\1/p')
  [[ -n "$metrics" ]] || {
    echo "FAIL no /metrics"
    return
  }
  local want_mode=$mode
  [[ $mode == auto ]] && want_mode=fexit
  grep -qE "^ebpf_geoip_probe_info\{mode=\"$want_mode\"\} 1(\.0+)?\$" <<<"$metrics" || {
    echo "FAIL probe_info is $(grep -o 'probe_info{[^}]*}' <<<"$metrics" | head -1), want mode=\"$want_mode\""
    return
  }
  # Observed series in the expected.txt format.
  local observed
  observed=$(awk '
    function label(name,   m) {
      return match($0, name "=\"[^\"]*\"") ? substr($0, RSTART + length(name) + 2,
        RLENGTH - length(name) - 3) : "?"
    }
    /^ebpf_geoip_(accepted_connections_total|unique_source_addresses)\{/ {
      key = label("country") " " label("port")
      if ($0 ~ /^ebpf_geoip_accepted/) total[key] = $NF + 0; else unique[key] = $NF + 0
      keys[key] = 1
    }
    END { for (k in keys) print k, (k in total ? total[k] : "-"), (k in unique ? unique[k] : "-") }
  ' <<<"$metrics" | sort)
  if [[ "$observed" != "$(cat "$out_dir/expected.txt")" ]]; then
    # Series as "country port connections unique", "-" where one is missing.
    echo "FAIL series (country port connections unique) want:" \
      "$(comm -23 "$out_dir/expected.txt" <(echo "$observed") | paste -sd';')" \
      "got:" "$(comm -13 "$out_dir/expected.txt" <(echo "$observed") | paste -sd';')"
    return
  fi
  local rc
  rc=$(sed -n "s/^@@M EXIT mode=$mode rc=\([0-9]*\)\$/\1/p" <<<"$section")
  [[ "$rc" == 0 ]] || {
    echo "FAIL exporter exit status ${rc:-?} after SIGTERM"
    return
  }
  local counted
  counted=$(awk '{s += $3} END {print s}' <<<"$observed")
  if [[ $mode == auto ]]; then
    echo "PASS $counted/$expected_total (fexit)"
  else
    echo "PASS $counted/$expected_total"
  fi
}

# True when the boot logged in $1 got to the end of mode $2.
# (grep reads the file itself: "tr | grep -q" fails under pipefail whenever
# grep stops reading early.)
finished() {
  if [[ $smoke == 1 ]]; then
    grep -aq '^@@M SMOKE ok=' "$1"
  else
    grep -aq "^@@M END mode=$2 " "$1"
  fi
}

[[ $smoke == 1 ]] && modes=(smoke)
declare -A cell
timings=()
failed=0
for kernel in "${kernels[@]}"; do
  [[ -s "$cache_dir/$kernel/vmlinuz" ]] || die "no cached kernel $kernel"
  pending=("${modes[@]}")
  for attempt in 1 2; do
    [[ ${#pending[@]} -eq 0 ]] && break
    log="$out_dir/logs/$kernel-attempt$attempt.log"
    csv=$(IFS=,; echo "${pending[*]}")
    read -r seconds rc < <(boot "$kernel" "$csv" "$log")
    note=""
    [[ $rc == 124 ]] && note=" (timeout)"
    timings+=("$kernel attempt $attempt (${pending[*]}): ${seconds}s, qemu exit $rc$note")
    # Seconds each mode took inside the guest, from its BEGIN and END uptimes.
    per_mode=$(tr -d '\r' <"$log" | awk '
      /^@@M BEGIN mode=/ { split($3, m, "="); split($4, u, "="); start[m[2]] = u[2] }
      /^@@M END mode=/ { split($3, m, "="); split($4, u, "=")
                         printf "%s %.1fs, ", m[2], u[2] - start[m[2]] }')
    [[ -n "$per_mode" ]] && timings[-1]+="; in the guest: ${per_mode%, }"
    echo "kernel_matrix: ${timings[-1]}" >&2
    still=()
    for mode in "${pending[@]}"; do
      if ! finished "$log" "$mode" && [[ $attempt == 1 ]]; then
        still+=("$mode") # hang or crash before the mode finished: retry once
        continue
      fi
      result=$(judge "$log" "$mode")
      cell[$kernel,$mode]=$result
      [[ $result == PASS* ]] || failed=1
    done
    pending=("${still[@]}")
  done
done

# --- Report ----------------------------------------------------------------
# Kernel column: "6.1.0-56-cloud-amd64 (bookworm-security)".
kernel_label() {
  awk -v v="$1" '$1 == v { sub(/^linux-image-/, "", $3); printf "`%s` (%s)", $3, $4 }' \
    "$out_dir/kernels.txt"
}
{
  echo "Generated by \`tests/kernel_matrix/run_matrix.sh\` on $(date -u +%Y-%m-%d):"
  echo "the real exporter and bundled database inside QEMU on Debian 12's stock cloud"
  echo "kernels. Each cell: accepted connections counted / expected over $(wc -l <"$out_dir/expected.txt")"
  echo "country × port series (exact counts and unique sources), plus $uncounted_total"
  echo "connections to a port outside \`--ports\` that must stay uncounted."
  echo
  printf '| kernel |'
  for mode in "${modes[@]}"; do printf ' %s |' "$mode"; done
  echo
  printf '|---|'
  for _ in "${modes[@]}"; do printf -- '---|'; done
  echo
  for kernel in "${kernels[@]}"; do
    printf '| %s |' "$(kernel_label "$kernel")"
    for mode in "${modes[@]}"; do printf ' %s |' "${cell[$kernel,$mode]:-FAIL not run}"; done
    echo
  done
} >"$out_dir/results.md"
cat "$out_dir/results.md"
echo
printf 'boot: %s\n' "${timings[@]}"
if [[ $failed == 1 ]]; then
  echo "kernel_matrix: FAILED; serial logs in $out_dir/logs/" >&2
  exit 1
fi
echo "kernel_matrix: all cells passed"
