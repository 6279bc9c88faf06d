# shellcheck shell=bash
# Host side of running the project inside QEMU on Debian's stock kernels,
# shared by run_matrix.sh (the kernel matrix) and run_vm_e2e.sh (the
# end-to-end suite): tools, kernels, the busybox initramfs, and booting with
# a timeout and one retry. Source it from bash after setting vm_name (the
# prefix of messages); it defines only vm_* functions and variables.
#
# The guest side is init.sh (installed as /init), which runs the job script
# the runner installs as /vm/job.sh and reports on the serial console in
# lines starting with "@@M ".

vm_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm_timings=() # one line per boot, for the caller's report

vm_die() {
  echo "${vm_name:-vm}: ERROR: $*" >&2
  exit 1
}

# Installs QEMU and the static busybox when they are missing.
vm_require_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  [[ -x /bin/busybox && "$(/bin/busybox --list)" == *$'\n'cpio$'\n'* ]] ||
    missing+=(busybox-static)
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "$vm_name: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
      vm_die "apt-get install ${missing[*]} failed"
  fi
  [[ "$(ldd /bin/busybox 2>&1 || true)" == *"not a dynamic executable"* ]] ||
    vm_die "/bin/busybox is not the static build (install busybox-static)"
}

# vm_fetch_kernels CACHE_DIR KERNELS_TXT: downloads the kernels once into
# CACHE_DIR (fetch_kernels.sh) and writes its "VERSION VMLINUZ PACKAGE SUITE"
# lines to KERNELS_TXT.
vm_fetch_kernels() {
  "$vm_lib_dir/fetch_kernels.sh" "$1" >"$2" ||
    vm_die "could not fetch the kernels; nothing can boot"
}

# vm_kernel_label KERNELS_TXT VERSION: "`6.1.0-56-cloud-amd64` (bookworm-security)".
vm_kernel_label() {
  awk -v v="$2" '$1 == v { sub(/^linux-image-/, "", $3); printf "`%s` (%s)", $3, $4 }' "$1"
}

# vm_initramfs_begin ROOT JOB_SCRIPT: a fresh initramfs tree in ROOT with
# busybox, init.sh as /init, JOB_SCRIPT as /vm/job.sh, and the users the
# exporter's privilege drop needs.
vm_initramfs_begin() {
  local root=$1 job=$2
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,run,tmp,etc,var,vm,data,lib64}
  ln -s ../run "$root/var/run"
  cp /bin/busybox "$root/bin/busybox"
  install -m 755 "$vm_lib_dir/init.sh" "$root/init"
  install -m 644 "$job" "$root/vm/job.sh"
  # The exporter gives up root for --privileges.runas=nobody once the probe is attached.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
  if [[ $EUID -eq 0 ]]; then
    mknod -m 600 "$root/dev/console" c 5 1
  fi
}

# vm_copy_binary ROOT BINARY [DEST]: copies a dynamically linked binary to
# ROOT/DEST (default /bin/NAME), without debug sections, with every library
# ldd names at the same path, and the dynamic loader.
vm_copy_binary() {
  local root=$1 binary=$2 dest=${3:-/bin/$(basename "$2")} library
  [[ -x "$binary" ]] || vm_die "$binary is missing: build it first"
  mkdir -p "$root$(dirname "$dest")"
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$root$dest" "$binary"
  else
    cp "$binary" "$root$dest"
  fi
  while read -r library; do
    [[ -e "$root$library" ]] && continue
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
  done < <(ldd "$binary" | awk '/=> \// {print $3} /^\t\// {print $1}')
}

# vm_copy_file ROOT FILE: copies FILE to the same absolute path under ROOT.
vm_copy_file() {
  [[ -f "$2" ]] || vm_die "$2 is missing"
  mkdir -p "$1$(dirname "$2")"
  cp "$2" "$1$2"
}

# vm_pack ROOT INITRD: the tree as a gzip'd newc cpio, every file root's.
vm_pack() {
  (cd "$1" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$2"
}

# Chooses the accelerator; sets vm_accel (kvm or tcg) and vm_accel_flags.
# KVM only on a host with Intel or AMD virtualisation: a /dev/kvm served by
# kvm_pvm (this project's cloud machines) runs only PVM-enabled guest kernels
# and stops Debian's stock kernels with "KVM internal error". TCG boots them
# in about two seconds. KERNEL_MATRIX_ACCEL=kvm|tcg overrides.
vm_accel_init() {
  vm_accel=${KERNEL_MATRIX_ACCEL:-}
  if [[ -z "$vm_accel" ]]; then
    vm_accel=tcg
    if [[ -r /dev/kvm && -w /dev/kvm ]] && [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
      vm_accel=kvm
    fi
  fi
  if [[ $vm_accel == kvm ]]; then
    vm_accel_flags=(-enable-kvm -cpu host)
  else
    # Without cx16: QEMU 7.2's TCG mis-emulates the per-CPU cmpxchg16b of the
    # 6.12 slab allocator, so about one boot in three died with a double fault
    # or a NULL dereference; without the feature 0 of 74 boots failed.
    vm_accel_flags=(-accel tcg -cpu "qemu64,-cx16")
  fi
}

# vm_boot VMLINUZ INITRD LOG TIMEOUT MEMORY_MB APPEND: boots once, serial
# console to LOG, and prints the seconds the boot took and QEMU's exit status
# (124: killed at TIMEOUT seconds).
vm_boot() {
  local vmlinuz=$1 initrd=$2 log=$3 timeout_s=$4 memory=$5 append=$6 start rc
  [[ -n "${vm_accel:-}" ]] || vm_accel_init
  start=$(date +%s.%N)
  set +e
  # -nic none: no network device at all; the guest has only loopback.
  timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 "${vm_accel_flags[@]}" \
    -m "$memory" -smp 2 -nographic -no-reboot -nic none \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet $append" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  awk -v start="$start" -v end="$(date +%s.%N)" -v rc="$rc" \
    'BEGIN { printf "%.1f %d\n", end - start, rc }'
}

# vm_boot_with_retry VMLINUZ INITRD LOG_STEM TIMEOUT MEMORY_MB NEXT_APPEND
# Boots at most twice: a boot that hangs or crashes (QEMU 7.2's software
# emulation sometimes does) is retried once. Before each attempt it calls
# NEXT_APPEND ATTEMPT PREVIOUS_LOG (PREVIOUS_LOG empty on the first), which
# prints the kernel command-line words for this attempt, or nothing when
# the previous boot finished everything. Logs go to LOG_STEM-attemptN.log;
# sets vm_logs to them and adds a line per boot to vm_timings.
vm_boot_with_retry() {
  local vmlinuz=$1 initrd=$2 stem=$3 timeout_s=$4 memory=$5 next=$6
  local attempt append log="" seconds rc note
  vm_logs=()
  for attempt in 1 2; do
    append=$("$next" "$attempt" "$log")
    [[ -z "$append" ]] && break
    log="$stem-attempt$attempt.log"
    read -r seconds rc < <(vm_boot "$vmlinuz" "$initrd" "$log" "$timeout_s" "$memory" "$append")
    note=""
    [[ $rc == 124 ]] && note=" (timeout)"
    vm_logs+=("$log")
    vm_timings+=("$(basename "$stem") attempt $attempt: ${seconds}s, qemu exit $rc$note")
    echo "$vm_name: ${vm_timings[-1]}" >&2
  done
}

# vm_markers LOG: the guest's "@@M " lines of LOG, carriage returns removed.
vm_markers() {
  tr -d '\r' <"$1" | grep -a '^@@M ' || true
}
