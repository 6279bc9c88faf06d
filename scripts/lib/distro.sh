# Where the Debian releases the scripts support differ: Debian 12 ("bookworm")
# and Debian 13 ("trixie"). Sourced by setup.sh. Everything else asks these
# functions rather than testing release names or versions itself.
#
#                        Debian 12            Debian 13
#   clang                14                   19
#   libFuzzer runtime    libclang-rt-14-dev   libclang-rt-19-dev
#   docker-compose       1.29 (Python)        2.26 (Go; no python3-yaml)
#
# Differences that are not about packages live where a plain cmake build or
# test run meets them too, and work on both without naming a release:
#   - GCC 14's UBSan null checks break abseil 20240722's hash tables:
#     CMakeLists.txt drops those checks where they do not compile, and
#     defines NDEBUG_SANITIZER so ASan builds keep the library's layout;
#   - libbpf 1.5 leaves a .bss reused from a pin unmapped in the skeleton:
#     exporter/probe/accept_probe.cc maps it (MapBssOntoKernelMap);
#   - docker-compose 2 writes volumes in the long syntax:
#     tests/bundle/compose_test.py reads both.
# tests/debian13/ proves the README commands on Debian 13.

# The codename of the running release, e.g. bookworm or trixie.
geoip_distro_codename() {
  (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}") || echo unknown
}

# Warns, without stopping, on a release the project is not tested on.
geoip_distro_check() {
  local codename
  codename=$(geoip_distro_codename)
  case "$codename" in
    bookworm | trixie) ;;
    *) echo "warning: tested on Debian 12 (bookworm) and 13 (trixie); this is '$codename'" >&2 ;;
  esac
}

# The compiler-rt package (libFuzzer, sanitizer runtimes) of the installed
# clang, which clang only recommends. Taken from clang's own major version,
# so a release with a newer clang needs no change here.
geoip_clang_rt_package() {
  local version
  version=$(clang -dumpversion 2>/dev/null) || geoip_die "clang is not installed"
  echo "libclang-rt-${version%%.*}-dev"
}

# Options for AddressSanitizer runs (ASAN_OPTIONS). Debian's abseil is built
# without ASan. From 20230125 on (Debian 13: 20240722) part of its hash
# tables' code sits in the library, which never unpoisons the slots that the
# instrumented header code poisons: every flat_hash_map insert reports a
# use-after-poison. There, abseil's manual poisoning is turned off; ASan's
# own checks stay. Debian 12's 20220623 keeps it.
geoip_asan_options() {
  local version
  version=$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null) || return 0
  if dpkg --compare-versions "$version" ge 20230125; then
    echo allow_user_poisoning=0
  fi
}

# Test packages whose names depend on the release, for geoip_setup test.
# Needs clang installed (the run packages) first.
geoip_distro_test_packages() {
  geoip_clang_rt_package
}

# geoip_debian_mirror SUITE: the URI this machine's apt fetches SUITE from
# (e.g. bookworm, or bookworm-security), read from its deb822 and one-line
# sources; empty if none names it.
geoip_debian_mirror() {
  geoip_debian_mirrors_of "$1" | head -n 1
}

# Every URI this machine's apt fetches suite $1 from, in the order apt reads them.
geoip_debian_mirrors_of() {
  local suite=$1 file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk -v want="$suite" '
      function flush(   n, s, i) {
        if (uri != "" && types ~ /(^| )deb( |$)/) {
          n = split(suites, s, " ")
          for (i = 1; i <= n; i++) if (s[i] == want) print uri
        }
        uri = suites = types = ""
      }
      /^Types:/ { $1 = ""; types = $0 " " }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 }
      /^[[:space:]]*$/ { flush() }
      END { flush() }
    ' "$file"
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$file" |
      awk -v want="$suite" '$2 == want { print $1 }'
  done
}
