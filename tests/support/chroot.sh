# Root file systems to chroot into, shared by the tests that run the README
# or the Debian package in a fresh Debian (tests/debian13, tests/package) and
# by the container tests' clean-up (tests/container): mounts in, the tree
# copied in, processes and mounts out. Source it; it only defines functions.
# The chroots share this kernel, so the real probe runs in them.

# Every mount point at or below $1, deepest first.
mounts_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Kills every process whose root is the chroot $1.
kill_chroot_processes() {
  local root=$1 pid link
  for _ in 1 2 3; do
    local found=0
    for pid in /proc/[0-9]*; do
      link=$(readlink "$pid/root" 2>/dev/null) || continue
      if [ "$link" = "$root" ]; then
        kill -KILL "${pid#/proc/}" 2>/dev/null || true
        found=1
      fi
    done
    [ $found = 0 ] && return 0
    sleep 1
  done
}

# Unmounts everything at or below $1; fails if anything stays mounted.
unmount_under() {
  local dir=$1 m
  for _ in 1 2 3 4; do
    local mounts=()
    mapfile -t mounts < <(mounts_under "$dir")
    [ ${#mounts[@]} -eq 0 ] && return 0
    for m in "${mounts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  [ -z "$(mounts_under "$dir")" ]
}

# The kernel's file systems in root $1, as on a booted machine, and this
# machine's name resolution. rslave: unmounting there never reaches this
# machine's /sys or /dev. /run is a tmpfs, so network namespaces made inside
# go away with it. bpffs is a private instance: pins made inside never meet
# this machine's, and vanish on unmount. The root is bound onto itself
# first: `ip -n NS` makes / a slave mount in a namespace of its own, which
# fails ("mount --make-rslave /": Invalid argument) unless / is a mount
# point, as it is on a booted machine.
mount_kernel_fs() {
  local root=$1
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind --make-rslave /sys "$root/sys"
  mount --rbind --make-rslave /dev "$root/dev"
  mount -t tmpfs -o mode=755 tmpfs "$root/run"
  mount -t bpf bpf "$root/sys/fs/bpf"
  mountpoint -q "$root/sys/kernel/tracing" || mount -t tracefs tracefs "$root/sys/kernel/tracing"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  [ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$root/etc/hosts"
}

# copy_tree REPO DEST: the work tree of REPO as it is, uncommitted changes
# and new files included, but not what .gitignore names (build directories).
copy_tree() {
  local repo=$1 dest=$2
  mkdir -p "$dest"
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        if [ -e "$repo/$f" ] || [ -L "$repo/$f" ]; then printf '%s\0' "$f"; fi
      done |
      tar -C "$repo" --null -T - -cf - | tar -C "$dest" -xf -
  else
    tar -C "$repo" --exclude='./build*' -cf - . | tar -C "$dest" -xf -
  fi
}
