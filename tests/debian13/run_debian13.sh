#!/usr/bin/env bash
# Debian 13 ("trixie"), tested: the README's two commands in a chroot of a
# fresh Debian 13 root file system. `scripts/run` must install, build and
# serve /metrics; `scripts/test` must install, build and pass the unit and
# end-to-end tests. The chroot shares this kernel, so the real probe runs.
#
# usage: tests/debian13/run_debian13.sh [CTEST ARGS...]
#   CTEST ARGS go to scripts/test's ctest (default: -L 'unit|e2e').
#   Needs root; exits 77 (skipped) without it.
#
# The root file system comes from Debian's mmdebstrap, fetched from the
# Debian mirror this machine's apt uses, and is kept in GEOIP_DEBIAN13_CACHE
# (default /var/cache/ebpf-geoip/debian13):
#   base-KEY.tar         minbase trixie, as mmdebstrap makes it. KEY hashes
#                        the suites, the mirrors and mmdebstrap's version.
#   provisioned-KEY.tar  the same after the README set-up installed its
#                        packages in it. KEY also hashes scripts/lib/, so a
#                        changed package list starts again from base.
# Either is rebuilt once older than GEOIP_DEBIAN13_MAX_AGE_DAYS (7), so
# Debian's updates come in. GEOIP_DEBIAN13_FRESH=1 starts from base anyway:
# the set-up then installs every package from the registry, as on a new
# machine. This machine's apt configuration is only read (which mirror it
# uses), never changed; mmdebstrap is installed with apt if missing.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (a chroot, mounts and the real probe)"
  exit 77
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/setup.sh"

suite=trixie
cache=${GEOIP_DEBIAN13_CACHE:-/var/cache/ebpf-geoip/debian13}
max_age_days=${GEOIP_DEBIAN13_MAX_AGE_DAYS:-7}
ctest_args=("$@")
[ ${#ctest_args[@]} -gt 0 ] || ctest_args=(-L 'unit|e2e')
# Inside the chroot.
src=/src/ebpf_geoip_exporter
# Budgets, under ctest's TIMEOUT, so that the clean-up below always runs.
run_budget=1200 test_budget=1800

started=$SECONDS
summary=()
failed=0
note() { summary+=("$(printf '  %-18s %s' "$1" "$2")"); }
fail() { note "$1" "FAIL  $2"; failed=1; }
say() { echo "debian13: $*"; }

# One run at a time. Whatever this script starts gets fd 9 closed (9>&-),
# so a process left behind never holds the lock.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -w 600 9 || geoip_die "another Debian 13 run holds $cache/lock"

# --- Mounts and clean-up ---------------------------------------------------
# mounts_under, kill_chroot_processes, unmount_under, mount_kernel_fs and
# copy_tree, as tests/package has them.
# shellcheck source=tests/support/chroot.sh
source "$repo/tests/support/chroot.sh"

# Removes a run directory, only once nothing is mounted below it: rm never
# crosses into this machine's /sys or /dev.
remove_run_dir() {
  local dir=$1
  [ -d "$dir" ] || return 0
  [ -d "$dir/root" ] && kill_chroot_processes "$dir/root"
  if ! unmount_under "$dir"; then
    echo "debian13: error: still mounted below $dir:" >&2
    mounts_under "$dir" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# A run killed outright (ctest's timeout sends SIGKILL) leaves its directory;
# whoever holds the lock next cleans it up.
for stale in "$cache"/run.*; do
  [ -d "$stale" ] || continue
  say "cleaning up after an earlier run: $stale"
  remove_run_dir "$stale" || geoip_die "cannot clean up $stale"
done
rm -f "$cache"/.*.tar

run_dir=$cache/run.$$
root=$run_dir/root
release="" versions=""
# On every exit: unmount and remove the run, then say what passed.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ! remove_run_dir "$run_dir"; then
    fail "clean-up" "mounts left behind below $run_dir"
  fi
  [ $failed = 0 ] || status=1
  echo
  echo "debian13: Debian ${release:-13} ($suite) in a chroot, kernel $(uname -r)"
  [ -z "$versions" ] || echo "  $versions"
  [ ${#summary[@]} -eq 0 ] || printf '%s\n' "${summary[@]}"
  if [ "$status" = 0 ]; then
    echo "debian13: PASS in $((SECONDS - started)) s"
  else
    echo "debian13: FAIL (exit $status) in $((SECONDS - started)) s"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Root file system ------------------------------------------------------
geoip_install mmdebstrap
host_codename=$(geoip_distro_codename)
mirror=$(geoip_debian_mirror "$host_codename")
security=$(geoip_debian_mirror "$host_codename-security")
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}
sources=("deb $mirror $suite main" "deb $mirror $suite-updates main"
  "deb $security $suite-security main")

key() { sha256sum | cut -c1-16; }
base_key=$(printf '%s\n' 1 minbase "${sources[@]}" "$(mmdebstrap --version)" | key)
provisioned_key=$( (echo "$base_key"; cat "$repo"/scripts/lib/*.sh) | key)
base=$cache/base-$base_key.tar
provisioned=$cache/provisioned-$provisioned_key.tar

# usable TAR: exists and is younger than the maximum age.
usable() { [ -n "$(find "$1" -maxdepth 0 -mtime "-$max_age_days" 2>/dev/null)" ]; }

# Roots made for other keys, or too old, only take space.
for old in "$cache"/base-*.tar "$cache"/provisioned-*.tar; do
  [ -f "$old" ] || continue
  if { [ "$old" != "$base" ] && [ "$old" != "$provisioned" ]; } || ! usable "$old"; then
    say "removing stale $(basename "$old")"
    rm -f "$old"
  fi
done

step_start=$SECONDS
if [ "${GEOIP_DEBIAN13_FRESH:-0}" != 1 ] && usable "$provisioned"; then
  from=$provisioned
  how="cached $(basename "$provisioned") (README packages installed)"
else
  if ! usable "$base"; then
    say "mmdebstrap --variant=minbase $suite from $mirror"
    tmp=$cache/.base.$$.tar
    mmdebstrap --quiet --variant=minbase "$suite" "$tmp" "${sources[@]}" 9>&- ||
      { rm -f "$tmp"; geoip_die "mmdebstrap failed: is $mirror reachable?"; }
    mv "$tmp" "$base"
    how="built $(basename "$base") with mmdebstrap"
  else
    how="cached $(basename "$base")"
  fi
  from=$base
fi
mkdir -p "$root"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -xf "$from" ||
  geoip_die "cannot extract $from"
note "root file system" "$how, $((SECONDS - step_start)) s"

# The kernel's file systems and name resolution, then the tree to test.
mount_kernel_fs "$root"
copy_tree "$repo" "$root$src"

# This machine's certificate authorities, as its own tools trust them: a
# machine whose HTTPS goes through an inspecting proxy (this one's npm
# registry does) has that proxy's authority there, which a fresh root file
# system lacks. Node.js (npm, for the Kubernetes schema test) reads them
# from NODE_EXTRA_CA_CERTS, beside its own.
host_ca=/etc/ssl/certs/ca-certificates.crt
extra_ca=()
if [ -r "$host_ca" ]; then
  mkdir -p "$root/etc/ssl"
  cp "$host_ca" "$root/etc/ssl/host-ca-certificates.crt"
  extra_ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca-certificates.crt)
fi

# Commands inside get a login's plain environment, none of this one's (but
# the certificate authorities above).
clean_env=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${extra_ca[@]}")
in_chroot() { chroot "$root" "${clean_env[@]}" "$@" 9>&-; }
release=$(cat "$root/etc/debian_version")

# --- README command 1: scripts/run -----------------------------------------
# It installs, builds and serves in the foreground; Ctrl-C stops it. Job
# control gives it a process group of its own, as a terminal would, and
# keeps SIGINT from being ignored, as it is in a script's background jobs.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "sudo scripts/run --web.listen-address=127.0.0.1:$port (in the chroot)"
step_start=$SECONDS
run_log=$run_dir/scripts_run.log
set -m
chroot "$root" "${clean_env[@]}" \
  bash -c "cd $src && exec scripts/run --web.listen-address=127.0.0.1:$port" >"$run_log" 2>&1 9>&- &
run_pid=$!
set +m
metrics=""
while [ $((SECONDS - step_start)) -lt $run_budget ] && kill -0 $run_pid 2>/dev/null; do
  metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null) && break
  metrics=""
  sleep 2
done
mode=$(sed -n 's/^ebpf_geoip_probe_info{mode="\([a-z]*\)"} 1$/\1/p' <<<"$metrics")
if [ -n "$mode" ]; then
  kill -INT -- -$run_pid
  run_status=0
  timeout 30 tail --pid=$run_pid -f /dev/null || kill -KILL $run_pid 2>/dev/null || true
  wait $run_pid || run_status=$?
  if [ $run_status = 0 ]; then
    note "scripts/run" "PASS  served /metrics (probe mode $mode), stopped on Ctrl-C, $((SECONDS - step_start)) s"
  else
    fail "scripts/run" "served /metrics, but exited $run_status on Ctrl-C"
  fi
else
  kill -KILL $run_pid 2>/dev/null || true
  wait $run_pid 2>/dev/null || true
  fail "scripts/run" "no /metrics with ebpf_geoip_probe_info within $((SECONDS - step_start)) s"
fi
if [ $failed != 0 ]; then
  echo "--- scripts/run output (last 60 lines)"
  tail -n 60 "$run_log"
fi
# What scripts/run left pinned stays out of the tests' way.
umount "$root/sys/fs/bpf" && mount -t bpf bpf "$root/sys/fs/bpf"

# --- README command 2: scripts/test ----------------------------------------
say "sudo GEOIP_SANITIZERS=0 scripts/test ${ctest_args[*]} (in the chroot)"
step_start=$SECONDS
test_log=$run_dir/scripts_test.log
test_status=0
timeout --kill-after=30 $test_budget chroot "$root" "${clean_env[@]}" GEOIP_SANITIZERS=0 \
  bash -c 'cd "$0" && exec scripts/test "$@"' "$src" "${ctest_args[@]}" 2>&1 9>&- |
  tee "$test_log" || test_status=$?
result=$(grep -E '^[0-9]+% tests passed' "$test_log" | tail -n 1 || true)
if [ $test_status = 0 ]; then
  note "scripts/test" "PASS  ${result:-ctest ran}, $((SECONDS - step_start)) s"
elif [ $test_status = 124 ]; then
  fail "scripts/test" "timed out after $test_budget s"
else
  fail "scripts/test" "exit $test_status${result:+: $result}, $((SECONDS - step_start)) s"
fi
versions=$(in_chroot dpkg-query -W -f='${Package} ${Version}\n' clang gcc libbpf-dev libabsl-dev \
  prometheus-cpp-dev libcivetweb-dev 2>/dev/null | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }' || true)

# --- Keep the provisioned root ---------------------------------------------
# Once every README package is installed, the root (without this tree and
# its build) saves the next run the downloads.
if [ "$from" = "$base" ]; then
  not_installed=$(in_chroot bash -c "source $src/scripts/lib/setup.sh && geoip_missing_packages \$(geoip_packages test)" 2>/dev/null ||
    echo "(cannot tell)")
  if [ -z "$not_installed" ]; then
    step_start=$SECONDS
    kill_chroot_processes "$root"
    unmount_under "$root" || geoip_die "cannot unmount below $root"
    rm -rf --one-file-system "$root$src" "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/tmp/* "$root/etc/resolv.conf"
    tmp=$cache/.provisioned.$$.tar
    if tar --numeric-owner --xattrs --xattrs-include='*' --one-file-system -C "$root" -cf "$tmp" .; then
      mv "$tmp" "$provisioned"
      note "cache" "saved $(basename "$provisioned") ($(du -m "$provisioned" | cut -f1) MB), $((SECONDS - step_start)) s"
    else
      rm -f "$tmp"
      note "cache" "could not save the provisioned root"
    fi
  else
    note "cache" "not saved: packages missing: $(tr '\n' ' ' <<<"$not_installed")"
  fi
fi
exit 0  # cleanup says PASS or FAIL
