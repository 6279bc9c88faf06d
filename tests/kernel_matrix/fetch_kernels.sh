#!/bin/bash
# Downloads the Debian kernels the QEMU matrix boots and extracts their
# vmlinuz into CACHE_DIR:
#   CACHE_DIR/6.1/vmlinuz   newest linux-image-6.1.0-N-cloud-amd64
#                           (bookworm or bookworm-security)
#   CACHE_DIR/6.12/vmlinuz  newest linux-image-6.12.N+deb12-cloud-amd64
#                           (bookworm-backports, or bookworm-security, which
#                           carries a newer 6.12 for bookworm too)
# with the package name in .../package, the suite it came from in .../suite
# and the kernel config in .../config, and prints one line per kernel:
# VERSION VMLINUZ PACKAGE SUITE.
# A kernel already in the cache is not downloaded again. Any failure is fatal:
# the matrix must never pass because a kernel could not be fetched.
#
# apt runs with a private sources list, package lists and cache under
# CACHE_DIR/apt, made from the system's Debian mirror and keyring. The
# system's apt configuration and state are only read, never changed, and the
# lookup does not depend on the system's package lists being fresh.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 CACHE_DIR" >&2
  exit 2
fi
mkdir -p "$1"
cache_dir=$(cd "$1" && pwd)
versions=(6.1 6.12)
declare -A pattern=(
  [6.1]='^linux-image-6\.1\.0-[0-9]+-cloud-amd64$'
  [6.12]='^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$'
)

die() {
  echo "fetch_kernels: ERROR: $*" >&2
  exit 1
}

cached() { [[ -s "$cache_dir/$1/vmlinuz" && -s "$cache_dir/$1/package" && -s "$cache_dir/$1/suite" ]]; }

report() {
  for version in "${versions[@]}"; do
    echo "$version $cache_dir/$version/vmlinuz $(cat "$cache_dir/$version/package")" \
      "$(cat "$cache_dir/$version/suite")"
  done
}

all_cached=1
for version in "${versions[@]}"; do
  if cached "$version"; then
    echo "fetch_kernels: cached $(cat "$cache_dir/$version/package")" >&2
  else
    all_cached=0
  fi
done
if [[ $all_cached == 1 ]]; then
  report
  exit 0
fi

# --- Private apt setup -----------------------------------------------------
# The mirrors and keyring of the system's Debian entries: "URI SUITE KEYRING"
# for every suite of every deb822 stanza.
mirror="" security="" keyring=""
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  while read -r uri suite signed_by; do
    case $suite in
      bookworm) mirror=$uri keyring=$signed_by ;;
      bookworm-security) security=$uri ;;
    esac
  done < <(awk '
    function flush(   n, s, i) {
      if (uri != "") { n = split(suites, s, " "); for (i = 1; i <= n; i++) print uri, s[i], key }
      uri = suites = key = ""
    }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { $1 = ""; suites = $0 }
    /^Signed-By:/ { key = $2 }
    /^[[:space:]]*$/ { flush() }
    END { flush() }
  ' /etc/apt/sources.list.d/debian.sources)
fi
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}
keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
[[ -f "$keyring" ]] || die "Debian archive keyring $keyring not found"

apt_dir="$cache_dir/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
cat >"$apt_dir/sources.list" <<SOURCES
deb [signed-by=$keyring] $mirror bookworm main
deb [signed-by=$keyring] $security bookworm-security main
deb [signed-by=$keyring] $mirror bookworm-backports main
SOURCES
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Cache::pkgcache=$apt_dir/cache/pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=$apt_dir/cache/srcpkgcache.bin"
  -o "APT::Sandbox::User=root"
)
echo "fetch_kernels: apt-get update (private lists: bookworm, bookworm-security, bookworm-backports)" >&2
apt-get "${apt_opts[@]}" --error-on=any update >&2 ||
  die "apt-get update failed: cannot reach Debian's archive at $mirror"

# --- Download and extract --------------------------------------------------
for version in "${versions[@]}"; do
  cached "$version" && continue
  dest="$cache_dir/$version"
  package=$(apt-cache "${apt_opts[@]}" search --names-only "${pattern[$version]}" |
    awk '{print $1}' | grep -E "${pattern[$version]}" | sort -V | tail -n 1) || true
  [[ -n "$package" ]] || die "no package matches ${pattern[$version]} in Debian's archive"
  work="$dest/download"
  rm -rf "$work"
  mkdir -p "$work"
  echo "fetch_kernels: downloading $package" >&2
  (cd "$work" && apt-get "${apt_opts[@]}" download "$package") >"$work/apt.log" 2>&1 || {
    cat "$work/apt.log" >&2
    die "apt-get download $package failed: cannot reach Debian's archive"
  }
  cat "$work/apt.log" >&2
  # The suite it came from, e.g. bookworm-security, for the results table.
  awk '/^Get:/ { split($3, a, "/"); print a[1]; exit }' "$work/apt.log" >"$dest/suite"
  debs=("$work"/*.deb)
  [[ -f "${debs[0]}" ]] || die "no .deb downloaded for $package"
  dpkg-deb -x "${debs[0]}" "$work/root" || die "dpkg-deb -x ${debs[0]} failed"
  images=("$work"/root/boot/vmlinuz-*)
  [[ -f "${images[0]}" ]] || die "${debs[0]} holds no boot/vmlinuz-*"
  # The config tells what the kernel has built in when a boot misbehaves.
  cp "$work"/root/boot/config-* "$dest/config" 2>/dev/null || true
  cp "${images[0]}" "$dest/vmlinuz.tmp"
  mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
  echo "$package" >"$dest/package"
  rm -rf "$work"
done
report
