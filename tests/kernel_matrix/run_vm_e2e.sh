#!/bin/bash
# The project's own end-to-end tests (tests/e2e_test.cc) inside QEMU on
# Debian 12's stock 6.1 and 6.12 cloud kernels, which offer every probe mode
# (fexit, kretprobe, tracepoint), unlike this project's CI machines, whose
# kernel has only the tracepoint. The e2e binary, exporter, traffic tool and database go into a
# busybox initramfs at the absolute paths the binary was built with, with
# iproute2's ip (network namespaces) and setpriv from the host, and the test
# databases tests/testdata/make_test_mmdb.pl writes on the host (the guest
# has no perl; GEOIP_TEST_MMDB_DIR points the tests at them). One boot per
# kernel runs the selected tests; a boot that hangs or crashes is retried
# once. Every selected test must pass: a skip fails too, since these kernels
# offer every hook.
#
# usage: run_vm_e2e.sh BUILD_DIR
#   BUILD_DIR  CMake build directory holding tests/e2e_test,
#              exporter/ebpf_geoip_exporter and tools/ebpf_geoip_traffic.
#              Serial logs go to BUILD_DIR/kernel-matrix/vm-e2e/logs/, the
#              table to BUILD_DIR/kernel-matrix/vm-e2e-results.md.
# Environment (optional):
#   VM_E2E_BINARY           another end-to-end binary of BUILD_DIR to run,
#                           e.g. tests/traffic_e2e_test; its logs and table
#                           go to vm-NAME/ and vm-NAME-results.md
#   VM_E2E_FILTER           gtest filter instead of the selection below
#   KERNEL_MATRIX_KERNELS   kernels to boot (default "6.1 6.12")
#   KERNEL_MATRIX_CACHE     kernel cache (default BUILD_DIR/kernel-matrix/kernels)
#   KERNEL_MATRIX_ACCEL     kvm or tcg (default: kvm on Intel/AMD KVM hosts, else tcg)
# Exit status: 0 only when every selected test passed on every kernel.
set -euo pipefail

# --- What runs in the VMs --------------------------------------------------
# Every end-to-end suite (EndToEnd*, parametrised ones included) except
# EndToEndMissingMode, which these kernels can only skip: they offer every
# mode. The whole selection takes about 1.5 minutes per kernel under
# software emulation, so nothing else needs leaving out; the tests that do
# not depend on the kernel (flags, help, landing page, busy port, missing
# database) cost about 3 s of it.
filter=${VM_E2E_FILTER:-'EndToEnd*.*:*/EndToEnd*.*-*/EndToEndMissingMode.*'}
# What the VMs must cover. Each pattern must match at least one selected
# test, so a renamed or dropped test cannot leave the VMs unnoticed.
required_patterns=(
  'EndToEnd.CountsConnectionsExactlyByCountryAndPort' # real exporter, world clients, exact
  'EndToEnd.Auto*'                                    # what auto chooses, and says why
  'EndToEnd.DropsToNobody*'                           # privilege drop, still counting
  'EndToEnd.Pinned*'                                  # pins across a restart
  'EndToEnd.*Overflow*'                               # full address map
  'EndToEnd.Reloads*'                                 # database reload under load
  '*/EndToEndMode.CountsExactly/*'                    # every mode counts exactly
  '*/EndToEndMode.*AlreadyBlocked*'                   # servers blocked in accept() first
  '*/EndToEndMode.*Prefork*'                          # 64-thread prefork server
)
# Seconds for the tests inside the guest (about 85 s measured), and for the
# whole boot.
e2e_timeout=240
boot_timeout=$((e2e_timeout + 60))

if [[ $# -ne 1 ]]; then
  sed -n '/^# usage/,/^# Exit/p' "$0" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm_name=vm_e2e
# shellcheck source=vm_lib.sh
source "$script_dir/vm_lib.sh"
e2e="$build_dir/${VM_E2E_BINARY:-tests/e2e_test}"
stem=$(basename "$e2e")
[[ $stem == e2e_test ]] && stem=e2e
out_dir="$build_dir/kernel-matrix/vm-$stem"
results="$build_dir/kernel-matrix/vm-$stem-results.md"
cache_dir=${KERNEL_MATRIX_CACHE:-$build_dir/kernel-matrix/kernels}
read -r -a kernels <<<"${KERNEL_MATRIX_KERNELS:-6.1 6.12}"

exporter="$build_dir/exporter/ebpf_geoip_exporter"
traffic="$build_dir/tools/ebpf_geoip_traffic"
# The source directory the build was configured from: GEOIP_SOURCE_DIR.
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt" 2>/dev/null)
[[ -n "$source_dir" ]] || vm_die "$build_dir/CMakeCache.txt names no source directory"
database="$source_dir/data/geo-whois-asn-country.mmdb"
for binary in "$e2e" "$exporter" "$traffic"; do
  [[ -x "$binary" ]] || vm_die "$binary is missing: build it first"
done
# The paths compiled into the e2e binary must be these, or the guest would
# look for its files elsewhere.
for path in "$exporter" "$traffic" "$source_dir" "$build_dir"; do
  grep -qaF "$path" "$e2e" || vm_die "$e2e was not built with $path; rebuild it in $build_dir"
done

# --- The selected tests, listed on the host --------------------------------
# gtest lists "Suite." lines and indented "Test  # GetParam() = ..." lines.
list_tests() {
  "$e2e" --gtest_list_tests --gtest_filter="$1" |
    awk '/^[^ ]/ { suite = $1; next } /^  / { print suite $1 }'
}
mkdir -p "$out_dir/logs"
rm -f "$out_dir"/logs/*.log
list_tests "$filter" >"$out_dir/selected.txt"
[[ -s "$out_dir/selected.txt" ]] || vm_die "the filter '$filter' selects no test"
if [[ -z "${VM_E2E_FILTER:-}" ]]; then
  for pattern in "${required_patterns[@]}"; do
    matched=$(list_tests "$pattern" | grep -Fxf - "$out_dir/selected.txt" || true)
    [[ -n "$matched" ]] ||
      vm_die "no selected end-to-end test matches '$pattern': was it renamed? See required_patterns in $0"
  done
fi
selected=$(wc -l <"$out_dir/selected.txt")
echo "vm_e2e: $selected tests selected: $filter" >&2

# --- Test databases, made on the host --------------------------------------
mmdb_dir="$out_dir/mmdb"
rm -rf "$mmdb_dir"
mkdir -p "$mmdb_dir"
perl "$source_dir/tests/testdata/make_test_mmdb.pl" "$mmdb_dir" ||
  vm_die "tests/testdata/make_test_mmdb.pl failed (needs libmaxmind-db-writer-perl)"

# --- Tools, kernels, initramfs ---------------------------------------------
vm_require_tools
vm_accel_init
vm_fetch_kernels "$cache_dir" "$out_dir/kernels.txt"
ip_binary=$(command -v ip) || vm_die "no ip on this host (apt-get install iproute2)"
setpriv_binary=$(command -v setpriv) || vm_die "no setpriv on this host (util-linux)"

root="$out_dir/initramfs"
vm_initramfs_begin "$root" "$script_dir/e2e_job.sh"
vm_copy_binary "$root" "$e2e" "$e2e"
vm_copy_binary "$root" "$exporter" "$exporter"
vm_copy_binary "$root" "$traffic" "$traffic"
vm_copy_file "$root" "$database"
vm_copy_binary "$root" "$ip_binary" /usr/local/bin/ip
vm_copy_binary "$root" "$setpriv_binary" /usr/local/bin/setpriv
cp -r "$mmdb_dir" "$root/vm/mmdb"
cat >"$root/vm/e2e.env" <<ENV
E2E_BINARY='$e2e'
E2E_FILTER='$filter'
E2E_TIMEOUT=$e2e_timeout
GEOIP_TEST_MMDB_DIR=/vm/mmdb
ENV
vm_pack "$root" "$out_dir/initrd.gz"

# --- Booting and judging ---------------------------------------------------
# The command line of attempt $1; nothing once the boot logged in $2 got to
# the end of the tests (their failures are results, not a reason to retry).
next_boot() {
  if [[ -n "$2" ]] && vm_markers "$2" | grep -q '^@@M E2E EXIT '; then return; fi
  echo "vm_job=e2e"
}

declare -A verdict
failed=0
for kernel in "${kernels[@]}"; do
  [[ -s "$cache_dir/$kernel/vmlinuz" ]] || vm_die "no cached kernel $kernel"
  vm_boot_with_retry "$cache_dir/$kernel/vmlinuz" "$out_dir/initrd.gz" \
    "$out_dir/logs/$kernel" "$boot_timeout" 1536 next_boot
  log=${vm_logs[-1]}
  markers=$(vm_markers "$log")
  guest_seconds=$(awk '/^@@M E2E BEGIN / { split($4, b, "=") }
    /^@@M E2E END / { split($4, e, "="); printf "%.0f", e[2] - b[2] }' <<<"$markers")
  [[ -n "$guest_seconds" ]] && vm_timings[-1]+="; tests ${guest_seconds}s in the guest"
  # Each selected test's status; MISSING when the guest never reported it.
  statuses=$(awk 'NR == FNR { if ($1 == "@@M" && $2 == "TEST") status[$4] = $3; next }
    { print (($1 in status) ? status[$1] : "MISSING"), $1 }' \
    <(echo "$markers") "$out_dir/selected.txt")
  passed=$(grep -c '^OK ' <<<"$statuses" || true)
  not_ok=$(awk '$1 != "OK" {printf "%s%s (%s)", sep, $2, $1; sep = ", "}' <<<"$statuses")
  rc=$(sed -n 's/^@@M E2E EXIT rc=\([0-9]*\)$/\1/p' <<<"$markers")
  if [[ "$passed" == "$selected" && "$rc" == 0 ]]; then
    verdict[$kernel]="PASS $passed/$selected"
  else
    failed=1
    reason=${not_ok:-gtest exited with ${rc:-no status (hang or crash)}}
    verdict[$kernel]="FAIL $passed/$selected: $reason"
  fi
  echo "vm_e2e: $kernel: ${verdict[$kernel]}" >&2
done

{
  echo "Generated by \`tests/kernel_matrix/run_vm_e2e.sh\` on $(date -u +%Y-%m-%d): the"
  echo "end-to-end tests (\`tests/e2e_test.cc\`) inside QEMU, with the real exporter"
  echo "and probe in every mode, on Debian 12's stock cloud kernels. Tests passed /"
  echo "run: every end-to-end test but \`EndToEndMissingMode\`, which needs a kernel"
  echo "without some hook."
  echo
  echo "| kernel | end-to-end tests |"
  echo "|---|---|"
  for kernel in "${kernels[@]}"; do
    echo "| $(vm_kernel_label "$out_dir/kernels.txt" "$kernel") | ${verdict[$kernel]} |"
  done
} >"$results"
cat "$results"
echo
printf 'boot: %s\n' "${vm_timings[@]}"
if [[ $failed == 1 ]]; then
  echo "vm_e2e: FAILED; gtest output in the serial logs in $out_dir/logs/" >&2
  exit 1
fi
echo "vm_e2e: every selected test passed on every kernel"
