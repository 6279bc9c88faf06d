#!/usr/bin/env bash
# The Debian package (cmake/package/), built from this tree and installed
# with apt into fresh minimal Debian 12 and 13 root file systems, then run
# there for real. For each release:
#   1. build the .deb: on this machine for its own release, in a chroot of
#      the other release (Depends names that release's library packages);
#   2. a fresh minbase root (mmdebstrap): `apt-get install ./the.deb`, so
#      Depends must resolve from the Debian registry; on Debian 13, also say
#      whether the Debian 12 package would;
#   3. the files, the conffile, the user (systemd-sysusers), the unit enabled,
#      `systemd-analyze verify` on the unit, `man ebpf_geoip_exporter`;
#   4. the installed binary run as the unit runs it (user ebpf-geoip, only
#      CAP_BPF and CAP_PERFMON, ARGS from /etc/default, pins): the probe
#      attaches, the bundled databases are found in /usr/share/ebpf-geoip
#      without flags, and clients from world addresses in a private network
#      namespace are counted exactly by country; then native TLS with the
#      package's own libssl.so for civetweb (no libssl-dev in the root),
#      over IPv6 on Debian 13;
#   5. `apt-get purge`: the pins (and so the probe) and the files go.
# The chroots share this kernel, so the real probe runs (one at a time with
# other probe tests: ctest runs this RUN_SERIAL).
#
# usage: tests/package/run_package_test.sh WORK_DIR TRAFFIC_BINARY
#   WORK_DIR holds this machine's package build and the run's roots.
#   TRAFFIC_BINARY is the build's ebpf_geoip_traffic (the world clients).
#   GEOIP_PACKAGE_SUITES="bookworm trixie" (default) chooses the releases.
#   Needs root; exits 77 (skipped) without it.
#
# Root file systems are cached in GEOIP_PACKAGE_CACHE (default
# /var/cache/ebpf-geoip/package), rebuilt once older than 7 days:
#   base-SUITE-KEY.tar   minbase SUITE as mmdebstrap makes it (KEY hashes the
#                        mirrors and mmdebstrap's version); every install
#                        starts from a fresh copy.
#   build-SUITE-KEY.tar  the same with the build packages (scripts/lib/), for
#                        a release other than this machine's (KEY also hashes
#                        scripts/lib/).
# This machine's apt configuration is only read (which mirror it uses).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (chroots, mounts and the real probe)"
  exit 77
fi
[ $# -eq 2 ] || { echo "usage: $0 WORK_DIR TRAFFIC_BINARY" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/setup.sh
source "$repo/scripts/lib/setup.sh"
work=$(mkdir -p "$1" && cd "$1" && pwd)
traffic=$(realpath "$2")
suites=${GEOIP_PACKAGE_SUITES:-bookworm trixie}
cache=${GEOIP_PACKAGE_CACHE:-/var/cache/ebpf-geoip/package}
max_age_days=7
# Inside the build chroot.
src=/src/ebpf_geoip_exporter

started=$SECONDS
summary=()
failed=0
note() { summary+=("$(printf '  %-28s %s' "$1" "$2")"); }
fail() { note "$1" "FAIL  $2"; failed=1; }
say() { echo "package: $*"; }
# check NAME DETAIL COMMAND...: PASS or FAIL under NAME.
check() {
  local name=$1 detail=$2
  shift 2
  if "$@"; then note "$name" "PASS  $detail"; else fail "$name" "$detail"; fi
}

# One run at a time; whatever this script starts gets fd 9 closed (9>&-).
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -w 900 9 || geoip_die "another package test holds $cache/lock"

# --- Mounts and clean-up ---------------------------------------------------
# mounts_under, kill_chroot_processes, unmount_under, mount_kernel_fs and
# copy_tree, as tests/debian13 has them.
# shellcheck source=tests/support/chroot.sh
source "$repo/tests/support/chroot.sh"

# Removes a root, only once nothing is mounted below it: rm never crosses
# into this machine's /sys or /dev.
remove_root() {
  local dir=$1
  [ -d "$dir" ] || return 0
  kill_chroot_processes "$dir"
  if ! unmount_under "$dir"; then
    echo "package: error: still mounted below $dir:" >&2
    mounts_under "$dir" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

run_dir=$work/run.$$
netns=""
exporter_pid=""
# A run killed outright (ctest's timeout) leaves its roots; the next cleans up.
for stale in "$work"/run.*; do
  [ -d "$stale" ] || continue
  say "cleaning up after an earlier run: $stale"
  for r in "$stale"/*/; do remove_root "${r%/}" || geoip_die "cannot clean up $r"; done
  rm -rf --one-file-system "$stale"
done
rm -f "$cache"/.*.tar

cleanup() {
  local status=$? r
  trap - EXIT INT TERM
  [ -z "$exporter_pid" ] || kill -KILL "$exporter_pid" 2>/dev/null || true
  [ -z "$netns" ] || ip netns delete "$netns" 2>/dev/null || true
  for r in "$run_dir"/*/; do
    [ -d "$r" ] || continue
    remove_root "${r%/}" || fail "clean-up" "mounts left behind below $r"
  done
  rm -rf --one-file-system "$run_dir"
  [ $failed = 0 ] || status=1
  echo
  echo "package: the Debian package on ${suites// / and }, kernel $(uname -r)"
  [ ${#summary[@]} -eq 0 ] || printf '%s\n' "${summary[@]}"
  if [ "$status" = 0 ]; then
    echo "package: PASS in $((SECONDS - started)) s"
  else
    echo "package: FAIL (exit $status) in $((SECONDS - started)) s"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$run_dir"

# Commands inside get a login's plain environment, none of this one's.
clean_env=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
# in_root ROOT COMMAND...
in_root() { local root=$1; shift; chroot "$root" "${clean_env[@]}" "$@" 9>&-; }

# --- Cached root file systems ----------------------------------------------
geoip_install mmdebstrap
host_codename=$(geoip_distro_codename)
mirror=$(geoip_debian_mirror "$host_codename")
security=$(geoip_debian_mirror "$host_codename-security")
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}
key() { sha256sum | cut -c1-16; }
usable() { [ -n "$(find "$1" -maxdepth 0 -mtime "-$max_age_days" 2>/dev/null)" ]; }
lib_hash=$(cat "$repo"/scripts/lib/*.sh | key)

# base_root SUITE: prints the cached minbase tarball of SUITE, made first if
# there is none younger than the maximum age.
base_root() {
  local suite=$1 sources base_key base tmp
  sources=("deb $mirror $suite main" "deb $mirror $suite-updates main"
    "deb $security $suite-security main")
  base_key=$(printf '%s\n' 1 minbase "${sources[@]}" "$(mmdebstrap --version)" | key)
  base=$cache/base-$suite-$base_key.tar
  if ! usable "$base"; then
    rm -f "$cache/base-$suite-"*.tar "$cache/build-$suite-"*.tar
    say "mmdebstrap --variant=minbase $suite from $mirror" >&2
    tmp=$cache/.base-$suite.$$.tar
    mmdebstrap --quiet --variant=minbase "$suite" "$tmp" "${sources[@]}" 9>&- >&2 ||
      { rm -f "$tmp"; geoip_die "mmdebstrap $suite failed: is $mirror reachable?"; }
    mv "$tmp" "$base"
  fi
  echo "$base"
}

# extract TAR ROOT: a fresh root from TAR.
extract() {
  mkdir -p "$2"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$2" -xf "$1" || geoip_die "cannot extract $1"
}

# --- 1. Build the package for each release ---------------------------------
revision=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
branch=$(git -C "$repo" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# Warnings are errors here as in this machine's other builds when CI says so;
# not in a chroot of another release, as in tests/debian13/.
chroot_configure_args=(-DGEOIP_PACKAGE=ON -DCMAKE_BUILD_TYPE=Release -DGEOIP_REVISION="$revision"
  -DGEOIP_BRANCH="$branch")
configure_args=("${chroot_configure_args[@]}" "$(geoip_cmake_options)")
mkdir -p "$work/debs"
# build_package SUITE: sets deb to the path of SUITE's .deb. Called in an
# if, where set -e does not hold: each step says when it fails.
deb=""
build_package() {
  local suite=$1 build root base build_key build_tar missing
  rm -rf "$work/debs/$suite"
  mkdir -p "$work/debs/$suite"
  if [ "$suite" = "$host_codename" ]; then
    # This machine's release: its build packages are installed (scripts/test).
    geoip_install "${geoip_run_packages[@]}" "${geoip_package_packages[@]}" >&2
    build=$work/build-$suite
    # A build directory made from another source tree is of no use here.
    if ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$repo" "$build/CMakeCache.txt" 2>/dev/null; then
      rm -rf "$build"
    fi
    cmake -S "$repo" -B "$build" "${configure_args[@]}" >"$work/debs/$suite/build.log" 2>&1 &&
      cmake --build "$build" -j"$(nproc)" --target package >>"$work/debs/$suite/build.log" 2>&1 ||
      { tail -n 40 "$work/debs/$suite/build.log" >&2; return 1; }
    cp "$build"/ebpf-geoip-exporter_*.deb "$work/debs/$suite/" || return 1
  else
    base=$(base_root "$suite") || return 1
    build_key=$( (basename "$base"; echo "$lib_hash") | key)
    build_tar=$cache/build-$suite-$build_key.tar
    root=$run_dir/build-$suite
    if usable "$build_tar"; then
      extract "$build_tar" "$root" || return 1
    else
      rm -f "$cache/build-$suite-"*.tar
      extract "$base" "$root" || return 1
    fi
    mount_kernel_fs "$root" || return 1
    copy_tree "$repo" "$root$src" || return 1
    # The build packages, by the same lists as scripts/run.
    in_root "$root" bash -c 'source "$0/scripts/lib/setup.sh" &&
      geoip_install "${geoip_run_packages[@]}" "${geoip_package_packages[@]}"' "$src" >&2 ||
      return 1
    if ! usable "$build_tar"; then
      missing=$(in_root "$root" bash -c 'source "$0/scripts/lib/setup.sh" &&
        geoip_missing_packages "${geoip_run_packages[@]}" "${geoip_package_packages[@]}"' "$src")
      [ -z "$missing" ] || { echo "not installed in the $suite build root: $missing" >&2; return 1; }
      unmount_under "$root" || return 1
      mv "$root$src" "$run_dir/src-$suite"
      rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/etc/resolv.conf"
      tar --numeric-owner --xattrs --xattrs-include='*' --one-file-system -C "$root" \
        -cf "$cache/.build-$suite.$$.tar" . && mv "$cache/.build-$suite.$$.tar" "$build_tar"
      mv "$run_dir/src-$suite" "$root$src"
      mount_kernel_fs "$root" || return 1
    fi
    in_root "$root" bash -c 'cd "$0" && cmake -S . -B build-deb "${@}" >build-deb.log 2>&1 &&
      cmake --build build-deb -j"$(nproc)" --target package >>build-deb.log 2>&1' \
      "$src" "${chroot_configure_args[@]}" || { tail -n 40 "$root$src/build-deb.log" >&2; return 1; }
    cp "$root$src"/build-deb/ebpf-geoip-exporter_*.deb "$work/debs/$suite/" || return 1
    remove_root "$root" || return 1
  fi
  deb=$(ls "$work/debs/$suite"/ebpf-geoip-exporter_*.deb) || return 1
}

declare -A debs
for suite in $suites; do
  step_start=$SECONDS
  where="on this machine"
  [ "$suite" = "$host_codename" ] || where="in a $suite chroot"
  say "building the package for $suite $where"
  if build_package "$suite"; then
    debs[$suite]=$deb
    note "$suite: build" "PASS  $(basename "$deb") $where, $((SECONDS - step_start)) s"
  else
    fail "$suite: build" "no package $where"
  fi
done

# --- 2-5. Install and run in a fresh root of each release ------------------
# metric NAME_AND_LABELS_REGEX: the sum of the samples on /metrics that match.
metrics_port=""
metric() {
  curl --silent --noproxy '*' --max-time 5 "http://127.0.0.1:$metrics_port/metrics" |
    awk -v re="^$1 " '$0 ~ re { s += $NF } END { print s + 0 }'
}
# wait_metric REGEX WANT: waits up to 10 s for the sum to be WANT; prints it.
wait_metric() {
  local got
  for _ in $(seq 100); do
    got=$(metric "$1")
    [ "$got" = "$2" ] && break
    sleep 0.1
  done
  echo "$got"
}

# test_install SUITE DEB
test_install() {
  local suite=$1 deb=$2 step_start=$SECONDS out
  local root=$run_dir/$suite
  local base
  base=$(base_root "$suite") || { fail "$suite: root" "no minbase root"; return; }
  extract "$base" "$root"
  mount_kernel_fs "$root"
  note "$suite: root" "fresh minbase $(cat "$root/etc/debian_version"), $((SECONDS - step_start)) s"
  cp "$deb" "$root/tmp/"
  # Only the registry's lists: nothing but the package comes from here.
  in_root "$root" apt-get update -qq >/dev/null || { fail "$suite: apt-get update" "failed"; return; }

  # The other release's package: does its Depends resolve here? Said, not
  # required: Debian 12's abseil package (libabsl20220623) is not in 13.
  local other
  for other in "${!debs[@]}"; do
    [ "$other" != "$suite" ] || continue
    cp "${debs[$other]}" "$root/tmp/other.deb"
    if out=$(in_root "$root" apt-get install --simulate --no-install-recommends /tmp/other.deb 2>&1); then
      note "$suite: $other's package" "installable here too"
    else
      # apt's words for each unmet dependency, shortened.
      note "$suite: $other's package" "not installable: $(grep -oE '(Pre)?Depends: .*' <<<"$out" |
        sed -e 's/ but it is not installable$/ (not in this release)/' \
          -e 's/ but \(.*\) is to be installed$/ (this release has \1)/' | paste -sd';' - |
        sed 's/;/; /g')"
    fi
    rm -f "$root/tmp/other.deb"
  done

  # 2. apt-get install ./the.deb, without recommends: Depends must suffice.
  step_start=$SECONDS
  if ! out=$(in_root "$root" apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" 2>&1); then
    echo "$out" | tail -n 30
    fail "$suite: apt-get install" "$(basename "$deb") did not install"
    return
  fi
  local depends
  depends=$(in_root "$root" dpkg-query -W -f='${Depends}' ebpf-geoip-exporter)
  note "$suite: apt-get install" "PASS  $(grep -c '^Setting up' <<<"$out") packages set up, $((SECONDS - step_start)) s"
  note "" "Depends: $depends"
  note "" "$(in_root "$root" dpkg-query -W -f='${Package} ${Version}\n' 'libabsl*' libbpf1 libcivetweb1 libmaxminddb0 2>/dev/null |
    paste -sd, - | sed 's/,/, /g')"

  # 3. What the package put where.
  local missing="" f
  for f in /usr/bin/ebpf_geoip_exporter /usr/share/ebpf-geoip/geo-whois-asn-country.mmdb \
    /usr/share/ebpf-geoip/ip-location-db-asn.mmdb /usr/share/ebpf-geoip/README.md \
    /usr/share/ebpf-geoip/NRO_LICENSE /usr/share/ebpf-geoip/DBIP-LICENSE \
    /usr/share/ebpf-geoip/ROUTEVIEWS-LICENSE /usr/share/ebpf-geoip/grafana/dashboards/ebpf-geoip.json \
    /usr/share/ebpf-geoip/grafana/gazetteer/countries.json \
    /usr/share/ebpf-geoip/prometheus/rules/ebpf_geoip_alerts.yml \
    /usr/share/ebpf-geoip/prometheus/rules/ebpf_geoip_recording.yml \
    /usr/lib/systemd/system/ebpf_geoip_exporter.service /usr/lib/sysusers.d/ebpf_geoip_exporter.conf \
    /etc/default/ebpf_geoip_exporter /usr/share/man/man1/ebpf_geoip_exporter.1.gz \
    /usr/lib/ebpf-geoip/libssl.so /usr/lib/ebpf-geoip/libcrypto.so; do
    [ -f "$root$f" ] || missing="$missing $f"
  done
  check "$suite: files" "binary, databases, licences, dashboard, gazetteer, rules, unit, sysusers, default, man, civetweb's OpenSSL${missing:+; missing:$missing}" \
    test -z "$missing"
  # deploy/systemd's files: the unit's settings all kept (its hardening
  # too), but for the binary's path and the man page.
  local unit=/usr/lib/systemd/system/ebpf_geoip_exporter.service expected
  expected=$(grep -v '^#' "$repo/deploy/systemd/ebpf_geoip_exporter.service" |
    sed -e 's|^ExecStart=/usr/local/bin/|ExecStart=/usr/bin/|' \
      -e 's|^Documentation=man:systemd.exec(5)$|Documentation=man:ebpf_geoip_exporter(1) man:systemd.exec(5)|')
  check "$suite: deploy/systemd" "unit as shipped but ExecStart=/usr/bin/... and its man page; sysusers and default files as shipped" \
    test "$expected" = "$(grep -v '^#' "$root$unit")" -a \
    "$(cat "$repo/deploy/systemd/ebpf_geoip_exporter.sysusers")" = "$(cat "$root/usr/lib/sysusers.d/ebpf_geoip_exporter.conf")" -a \
    "$(cat "$repo/deploy/systemd/ebpf_geoip_exporter.default")" = "$(cat "$root/etc/default/ebpf_geoip_exporter")"
  check "$suite: conffile" "/etc/default/ebpf_geoip_exporter" \
    grep -q '^ /etc/default/ebpf_geoip_exporter ' \
    <(in_root "$root" dpkg-query -W -f='${Conffiles}\n' ebpf-geoip-exporter)
  local user
  user=$(in_root "$root" getent passwd ebpf-geoip || true)
  check "$suite: user" "ebpf-geoip made by systemd-sysusers in postinst" test -n "$user"
  check "$suite: unit enabled" "multi-user.target.wants/ebpf_geoip_exporter.service" \
    test -L "$root/etc/systemd/system/multi-user.target.wants/ebpf_geoip_exporter.service"
  # The unit as installed, the binary it names included.
  if in_root "$root" sh -c 'command -v systemd-analyze' >/dev/null; then
    out=$(in_root "$root" systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ] &&
      note "$suite: systemd-analyze" "PASS  verify: no complaints" ||
      { fail "$suite: systemd-analyze" "verify complains"; echo "$out"; }
    out=$(in_root "$root" systemd-analyze security --offline=true --threshold=25 "$unit" 2>&1) &&
      note "" "$(grep -o 'Overall exposure level.*' <<<"$out")" ||
      { fail "$suite: systemd-analyze" "security: exposure above 2.5"; echo "$out" | tail -n 5; }
  else
    note "$suite: systemd-analyze" "not installed here"
  fi
  step_start=$SECONDS
  if in_root "$root" apt-get install -y -qq --no-install-recommends man-db >/dev/null 2>&1; then
    # Wide enough that no line wraps, spaces squeezed (man justifies).
    out=$(in_root "$root" env MANWIDTH=250 man -P cat ebpf_geoip_exporter 2>&1 | tr -s ' ' || true)
    if grep -q '^ ebpf_geoip_exporter - accepted TCP connections by client country' <<<"$out" &&
      grep -q -- '^ --geoip.database$' <<<"$out" && grep -q '^FILES$' <<<"$out" &&
      grep -q '^ /usr/share/ebpf-geoip/geo-whois-asn-country.mmdb$' <<<"$out"; then
      note "$suite: man" "PASS  man ebpf_geoip_exporter: NAME, flags, FILES, $((SECONDS - step_start)) s"
    else
      fail "$suite: man" "man ebpf_geoip_exporter lacks its NAME, flags or FILES"
      head -n 30 <<<"$out"
    fi
  else
    fail "$suite: man" "could not install man-db"
  fi

  # 4. The installed binary, run as the unit runs it: what its ExecStartPre
  # lines prepare, then its user, capabilities, pin path and ARGS, with a
  # loopback listen address and the test's port after them (later flags win).
  in_root "$root" install -d -o ebpf-geoip -g ebpf-geoip -m 0700 /sys/fs/bpf/ebpf_geoip
  chmod o+x "$root/sys/fs/bpf"
  local args port=18093 log=$run_dir/$suite-exporter.log
  args=$(in_root "$root" sh -c '. /etc/default/ebpf_geoip_exporter && echo "$ARGS"')
  set -m
  # shellcheck disable=SC2086
  chroot "$root" "${clean_env[@]}" setpriv --reuid=ebpf-geoip --regid=ebpf-geoip --clear-groups \
    --no-new-privs --inh-caps=-all,+bpf,+perfmon --ambient-caps=+bpf,+perfmon \
    --bounding-set=-all,+bpf,+perfmon \
    /usr/bin/ebpf_geoip_exporter --bpf.pin-path=/sys/fs/bpf/ebpf_geoip $args \
    --web.listen-address=127.0.0.1:0 --bpf.ports=$port --bpf.drain-interval=100ms >"$log" 2>&1 9>&- &
  exporter_pid=$!
  set +m
  if ! metrics_port=$(python3 "$repo/tests/support/exporter_process.py" port "$log" \
    --pid "$exporter_pid" --timeout 20); then
    fail "$suite: run" "the installed exporter did not start as the unit would"
    cat "$log"
    return
  fi
  local mode uid
  mode=$(curl --silent --noproxy '*' --max-time 5 "http://127.0.0.1:$metrics_port/metrics" |
    sed -n 's/^ebpf_geoip_probe_info{mode="\([a-z_]*\)"} 1$/\1/p')
  uid=$(awk '/^Uid:/ { print $2 }' "/proc/$exporter_pid/status")
  check "$suite: run" "probe attached (mode $mode) as ebpf-geoip (uid $uid), pinned" \
    test -n "$mode" -a "$uid" = "$(cut -d: -f3 <<<"$user")" -a -e "$root/sys/fs/bpf/ebpf_geoip/link"
  check "$suite: default databases" "found in /usr/share/ebpf-geoip without flags" \
    test "$(metric 'ebpf_geoip_database_info[{].*path="/usr/share/ebpf-geoip/geo-whois-asn-country.mmdb".*[}]')" = 1 \
    -a "$(metric 'ebpf_geoip_asn_database_info[{].*path="/usr/share/ebpf-geoip/ip-location-db-asn.mmdb".*[}]')" = 1

  # World clients: a private network namespace whose loopback holds a GB and
  # a US address; the probe is global, so the exporter outside sees them.
  netns=geoip-test-$$-0
  ip netns add "$netns"
  ip -n "$netns" link set lo up
  ip -n "$netns" addr add 81.2.69.142/32 dev lo
  ip -n "$netns" addr add 2001:4860:4860::8888/128 dev lo nodad
  local gb=7 us=4 got_gb got_us got_all
  ip netns exec "$netns" "$traffic" --listen="127.0.0.1:$port,[::1]:$port" \
    --connect="81.2.69.142>127.0.0.1:$port*$gb,2001:4860:4860::8888>[::1]:$port*$us" \
    --timeout=20 >/dev/null 9>&- || fail "$suite: clients" "ebpf_geoip_traffic failed"
  ip netns delete "$netns"
  netns=""
  got_gb=$(wait_metric "ebpf_geoip_accepted_connections_total[{]country=\"GB\",port=\"$port\"[,}].*" $gb)
  got_us=$(wait_metric "ebpf_geoip_accepted_connections_total[{]country=\"US\",port=\"$port\"[,}].*" $us)
  # Two more drain intervals: nothing more may arrive.
  sleep 0.3
  got_all=$(metric "ebpf_geoip_accepted_connections_total[{].*port=\"$port\"[,}].*")
  check "$suite: exact counts" "GB $got_gb of $gb, US $got_us of $us, $got_all on the port in all" \
    test "$got_gb" = $gb -a "$got_us" = $us -a "$got_all" = $((gb + us))

  kill -TERM "$exporter_pid" 2>/dev/null || true
  timeout 15 tail --pid="$exporter_pid" -f /dev/null || kill -KILL "$exporter_pid" 2>/dev/null || true
  wait "$exporter_pid" 2>/dev/null || true
  exporter_pid=""

  # 4b. Native TLS from the installed files alone: no libssl-dev here, so
  # civetweb finds "libssl.so" only through the package's own
  # (/usr/lib/ebpf-geoip); over IPv6 where this release's civetweb has it.
  check "$suite: no libssl-dev" "the premise of the TLS check" \
    test ! -e "$root/usr/lib/x86_64-linux-gnu/libssl.so"
  local tls_dir=/etc/ebpf-geoip-test host=127.0.0.1 listen=127.0.0.1:0
  mkdir -p "$root$tls_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,IP:::1 \
    -keyout "$root$tls_dir/server.key" -out "$root$tls_dir/server.crt" 2>/dev/null
  chmod 0644 "$root$tls_dir/server.key"
  printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n' >"$root$tls_dir/web.yml"
  if [ "$suite" != bookworm ]; then host='[::1]' listen='[::1]:0'; fi
  log=$run_dir/$suite-tls.log
  set -m
  chroot "$root" "${clean_env[@]}" setpriv --reuid=ebpf-geoip --regid=ebpf-geoip --clear-groups \
    --no-new-privs /usr/bin/ebpf_geoip_exporter --connections.source=simulated \
    --web.listen-address="$listen" --web.config.file=$tls_dir/web.yml >"$log" 2>&1 9>&- &
  exporter_pid=$!
  set +m
  local tls_port out=""
  if tls_port=$(python3 "$repo/tests/support/exporter_process.py" port "$log" \
    --pid "$exporter_pid" --timeout 20); then
    out=$(curl --silent --noproxy '*' --max-time 5 --cacert "$root$tls_dir/server.crt" \
      -w '\n%{http_code} %{ssl_verify_result}' "https://$host:$tls_port/metrics" || true)
  fi
  check "$suite: native TLS" "HTTPS on $listen from the package's files: $(tail -n1 <<<"$out")" \
    test "$(tail -n1 <<<"$out")" = "200 0"
  grep -q '^ebpf_geoip_build_info{' <<<"$out" || cat "$log"
  kill -TERM "$exporter_pid" 2>/dev/null || true
  timeout 15 tail --pid="$exporter_pid" -f /dev/null || kill -KILL "$exporter_pid" 2>/dev/null || true
  wait "$exporter_pid" 2>/dev/null || true
  exporter_pid=""
  rm -rf "${root:?}$tls_dir"

  # 5. Purge: prerm removes the pins left behind, and with them the probe.
  if out=$(in_root "$root" apt-get purge -y -q ebpf-geoip-exporter 2>&1); then
    check "$suite: purge" "pins, binary, unit links and conffile gone" \
      test ! -e "$root/sys/fs/bpf/ebpf_geoip" -a ! -e "$root/usr/bin/ebpf_geoip_exporter" \
      -a ! -e "$root/etc/default/ebpf_geoip_exporter" \
      -a ! -L "$root/etc/systemd/system/multi-user.target.wants/ebpf_geoip_exporter.service"
  else
    fail "$suite: purge" "apt-get purge failed"
    echo "$out" | tail -n 20
  fi
  remove_root "$root"
}

for suite in $suites; do
  if [ -n "${debs[$suite]:-}" ]; then
    say "installing $(basename "${debs[$suite]}") in a fresh $suite root"
    test_install "$suite" "${debs[$suite]}"
  fi
done
exit 0 # cleanup says PASS or FAIL
