#!/bin/busybox sh
# /init of the QEMU initramfs that vm_lib.sh builds (busybox ash, PID 1).
# Sets up what every job needs, then runs the job its runner installed as
# /vm/job.sh: the kernel matrix (matrix_job.sh) or the end-to-end suite
# (e2e_job.sh). Everything the host asserts on goes to the serial console as
# lines starting with "@@M ". It always ends with poweroff, so QEMU exits.
/bin/busybox --install -s
# /usr/local/bin first: real iproute2 `ip`, setpriv and bpftool, when a job
# ships them, win over busybox's applets of the same name.
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
# `ip netns add` keeps its namespaces under /run/netns (/var/run links here).
mount -t tmpfs tmpfs /run
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

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# Waits up to $2 tenths of a second for file $1 to contain the line
# "listening" (ebpf_geoip_traffic's readiness line); true if it did.
await_listening() {
  i=0
  while [ $i -lt "$2" ]; do
    grep -qx listening "$1" 2>/dev/null && return 0
    usleep 100000
    i=$((i + 1))
  done
  return 1
}

echo # the firmware leaves the cursor mid-line
say "INIT kernel=$(uname -r) uptime=$(uptime_s)"
# Loopback only: QEMU runs with -nic none, so lo is the only interface.
ip link set lo up
for knob in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 >"$knob"; done

if [ -r /vm/job.sh ]; then
  . /vm/job.sh
else
  say "ERROR no /vm/job.sh in the initramfs"
fi
finish
