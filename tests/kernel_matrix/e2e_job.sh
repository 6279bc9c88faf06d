# shellcheck shell=sh
# VM end-to-end job, sourced by /init (init.sh) inside QEMU: runs the
# project's own GoogleTest end-to-end binary, which run_vm_e2e.sh put at the
# absolute path it was built for (with the exporter, the traffic tool and the
# database at theirs), with the filter the host chose. /vm/e2e.env sets:
#   E2E_BINARY, E2E_FILTER, E2E_TIMEOUT (seconds), GEOIP_TEST_MMDB_DIR
# It prints gtest's output ("@@M | " lines), one "@@M TEST STATUS NAME" line
# per test that started, and "@@M E2E EXIT rc=N".

# shellcheck source=/dev/null
. /vm/e2e.env
export GEOIP_TEST_MMDB_DIR

# What the tests run as commands (found through PATH; busybox's own shell
# would prefer its applets): iproute2's ip with netns, setpriv.
say "TOOLS $(/usr/local/bin/ip -V 2>&1 | head -n 1) / $(/usr/local/bin/setpriv -V 2>&1 | head -n 1)"

say "E2E BEGIN uptime=$(uptime_s)"
cd /tmp || exit
timeout "$E2E_TIMEOUT" "$E2E_BINARY" --gtest_filter="$E2E_FILTER" --gtest_color=no \
  >/tmp/e2e.log 2>&1
rc=$?
say "E2E END uptime=$(uptime_s)"
say_file /tmp/e2e.log
# One line per test that started: OK, FAILED or SKIPPED from gtest's own
# result line, UNFINISHED when none came (a crash, or the timeout).
awk '
  $1 == "[" && $3 == "]" && NF >= 4 {
    name = $4; sub(/,$/, "", name)
    if ($2 == "RUN") { order[++n] = name; status[name] = "UNFINISHED" }
    else if (($2 == "OK" || $2 == "FAILED" || $2 == "SKIPPED") && status[name] == "UNFINISHED")
      status[name] = $2
  }
  END { for (i = 1; i <= n; i++) print "@@M TEST", status[order[i]], order[i] }
' /tmp/e2e.log
say "E2E EXIT rc=$rc"
