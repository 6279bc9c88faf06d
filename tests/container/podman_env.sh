# Podman for the container tests, private to one run: sourced by
# tests/container/run_*.sh, never run. Podman gets its own settings and state,
# never this machine's: a containers.conf (runc, because crun refuses this
# host's hybrid cgroup layout; the cgroupfs manager; ulimits within the hard
# limits) and a storage.conf (vfs) under the run directory, through
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF. podman_env_remove removes
# everything: the containers, the image store, and the empty cgroups podman
# leaves. A run killed outright is cleaned up by the next one.
#
# The base image is a Debian root file system from mmdebstrap (minbase, this
# machine's release), imported with `podman import`: no registry is
# reachable. It is kept in GEOIP_CONTAINER_CACHE (default
# /var/cache/ebpf-geoip/container) as base-KEY.tar, KEY hashing the suite,
# the mirrors and mmdebstrap's version, and rebuilt once older than
# GEOIP_CONTAINER_MAX_AGE_DAYS (7). The mirrors are the ones this machine's
# apt uses (scripts/lib/distro.sh), as for tests/debian13/.
#
# The caller sets `repo`, defines say and die, and sources
# scripts/lib/setup.sh. It gets: cache, run_dir (with app/ and app/lib/ for
# podman_env_copy_binary), image, and the function podman. Runs of every
# container test take turns: fd 9 holds the lock, and what they start gets it
# closed (9>&-), so a process left behind never holds it.

cache=${GEOIP_CONTAINER_CACHE:-/var/cache/ebpf-geoip/container}
max_age_days=${GEOIP_CONTAINER_MAX_AGE_DAYS:-7}
suite=$(geoip_distro_codename)
image=localhost/geoip-test-base:$suite
mmdebstrap_budget=600 podman_budget=120
run_dir=$cache/run.$$

# podman_in DIR ARGS...: podman with the settings and state of run DIR.
podman_in() {
  local dir=$1
  shift
  CONTAINERS_CONF=$dir/containers.conf CONTAINERS_STORAGE_CONF=$dir/storage.conf TMPDIR=$dir/tmp \
    timeout --kill-after=10 "$podman_budget" podman "$@" 9>&-
}

# in_private_var_lib DIR CMD...: runs CMD (a command or an exported function)
# in a mount namespace of its own where /var/lib is an overlay whose writes
# go to a tmpfs on DIR; they end with the namespace.
in_private_var_lib() {
  unshare --mount --propagation private -- bash -c '
    mount -t tmpfs tmpfs "$1" && mkdir "$1/upper" "$1/work" &&
      mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$1/upper,workdir=$1/work" /var/lib &&
      shift && "$@"' in_private_var_lib "$@" 9>&-
}

# mounts_under, as tests/debian13 and tests/package have it.
# shellcheck source=tests/support/chroot.sh
source "$repo/tests/support/chroot.sh"

# Removes run DIR: the exporter that logs into it, its containers (conmon
# and all), whatever podman left mounted, then the files. Fails if something
# stays mounted.
remove_run_dir() {
  local dir=$1 m pid
  [ -d "$dir" ] || return 0
  for pid in /proc/[0-9]*; do
    case $(readlink "$pid/fd/1" 2>/dev/null) in
      "$dir"/*) kill -KILL "${pid#/proc/}" 2>/dev/null || true ;;
    esac
  done
  if [ -f "$dir/containers.conf" ]; then
    podman_in "$dir" rm --force --all --time 0 >/dev/null 2>&1 || true
  fi
  # The cgroups podman made for this run alone (listed by podman_env_start).
  if [ -f "$dir/cgroups" ]; then
    while read -r cgroup; do
      [ -d "$cgroup" ] || continue
      rmdir "$cgroup/conmon" 2>/dev/null || true
      rmdir "$cgroup" 2>/dev/null || echo "container: note: $cgroup is still in use" >&2
    done <"$dir/cgroups"
  fi
  for m in $(mounts_under "$dir"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -n "$(mounts_under "$dir")" ]; then
    echo "container: error: still mounted below $dir:" >&2
    mounts_under "$dir" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# podman_env_start: waits for the lock, cleans up after runs killed
# outright, and makes this run's directory and settings.
podman_env_start() {
  mkdir -p "$cache"
  exec 9>"$cache/lock"
  flock -w 300 9 || die "another run holds $cache/lock"

  # A run killed outright (ctest's timeout sends SIGKILL) leaves its directory
  # and its namespace; whoever holds the lock next cleans them up.
  for stale in "$cache"/run.*; do
    [ -d "$stale" ] || continue
    say "cleaning up after an earlier run: $stale"
    remove_run_dir "$stale" || die "cannot clean up $stale"
  done
  rm -f "$cache"/.*.tar
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import netns; netns.delete_stale_namespaces()' \
    "$repo/tests/support"

  mkdir -p "$run_dir"/{tmp,storage/graph,storage/run,libpod,networks,app/lib}
  # Podman's cgroupfs manager makes libpod_parent (and libpod_parent/conmon) in
  # every hierarchy and leaves them behind, empty. Those that do not exist yet
  # are listed for remove_run_dir.
  for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "${hierarchy}libpod_parent" ] || echo "${hierarchy}libpod_parent"
  done >"$run_dir/cgroups"
  cat >"$run_dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[network]
network_config_dir = "$run_dir/networks"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$run_dir/libpod"
image_copy_tmp_dir = "$run_dir/tmp"
EOF
  cat >"$run_dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$run_dir/storage/graph"
runroot = "$run_dir/storage/run"
EOF
}

podman() { podman_in "$run_dir" "$@"; }

# podman_env_image: the base image, from the cache or mmdebstrap, as $image.
podman_env_image() {
  local step mirror security sources key base old how tmp
  step=$SECONDS
  mirror=$(geoip_debian_mirror "$suite")
  security=$(geoip_debian_mirror "$suite-security")
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${security:-http://deb.debian.org/debian-security}
  sources=("deb $mirror $suite main" "deb $mirror $suite-updates main"
    "deb $security $suite-security main")
  key=$(printf '%s\n' 1 minbase "${sources[@]}" "$(mmdebstrap --version)" | sha256sum | cut -c1-16)
  base=$cache/base-$key.tar
  for old in "$cache"/base-*.tar; do
    [ -f "$old" ] || continue
    if [ "$old" != "$base" ] || [ -z "$(find "$old" -maxdepth 0 -mtime "-$max_age_days")" ]; then
      say "removing stale $(basename "$old")"
      rm -f "$old"
    fi
  done
  if [ -f "$base" ]; then
    how="cached $(basename "$base")"
  else
    say "mmdebstrap --variant=minbase $suite from $mirror"
    tmp=$cache/.base.$$.tar
    timeout --kill-after=30 "$mmdebstrap_budget" mmdebstrap --quiet --variant=minbase "$suite" "$tmp" \
      "${sources[@]}" 9>&- || { rm -f "$tmp"; die "mmdebstrap failed: is $mirror reachable?"; }
    mv "$tmp" "$base"
    how="built $(basename "$base")"
  fi
  # As root, podman import records the layer's digests in
  # /var/lib/containers/cache whatever the configuration says (containers/image
  # has no setting for it). It runs where that stays private.
  export -f podman_in
  export podman_budget
  mkdir "$run_dir/var-lib"
  in_private_var_lib "$run_dir/var-lib" podman_in "$run_dir" import --quiet "$base" "$image" >/dev/null ||
    die "podman import $base failed"
  say "image $image from $how, $((SECONDS - step)) s"
}

# podman_env_copy_binary BINARY: copies BINARY into $run_dir/app and the
# libraries it needs into $run_dir/app/lib, but glibc's: the image's glibc is
# the same release's. Mount $run_dir/app and set LD_LIBRARY_PATH to its lib.
podman_env_copy_binary() {
  cp "$1" "$run_dir/app/"
  ldd "$1" | sed -n 's/.* => \(\/[^ ]*\) .*/\1/p' |
    grep -vE '/(ld-linux[^/]*|lib(c|m|mvec|dl|rt|pthread|resolv|util)\.so[^/]*)$' |
    while read -r lib; do cp -L "$lib" "$run_dir/app/lib/"; done
}

# podman_env_remove: removes this run's directory (see remove_run_dir).
podman_env_remove() { remove_run_dir "$run_dir"; }
