#include "exporter/util/auto_pin.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace geoip {

Launcher DetectLauncher(const LaunchFacts& facts) {
  if (!facts.invocation_id.empty()) {
    // Before systemd 248 there is no SYSTEMD_EXEC_PID, and INVOCATION_ID
    // alone has to do.
    if (facts.systemd_exec_pid.empty()) return Launcher::kSystemd;
    int exec_pid = 0;
    if (absl::SimpleAtoi(facts.systemd_exec_pid, &exec_pid) && exec_pid == facts.pid) {
      return Launcher::kSystemd;
    }
  }
  if (facts.pid == 1) return Launcher::kContainerInit;
  return Launcher::kShell;
}

absl::string_view LauncherDescription(Launcher launcher) {
  switch (launcher) {
    case Launcher::kSystemd:
      return "started by systemd";
    case Launcher::kContainerInit:
      return "PID 1, a container's entrypoint";
    case Launcher::kShell:
      break;
  }
  return "started from a shell";
}

AutoPinPath ChooseAutoPinPath(const LaunchFacts& facts, absl::string_view bpffs_default) {
  const Launcher launcher = DetectLauncher(facts);
  const absl::string_view who = LauncherDescription(launcher);
  if (launcher == Launcher::kShell) {
    return {"", absl::StrCat("no pinning (", who, "): stopping the exporter detaches the probe")};
  }
  if (bpffs_default.empty()) {
    return {"", absl::StrCat("no pinning (", who, ", but no bpffs is mounted at /sys/fs/bpf)")};
  }
  return {std::string(bpffs_default),
          absl::StrCat("pinning at ", bpffs_default, " (", who,
                       "): the probe keeps counting while the exporter restarts")};
}

LaunchFacts ReadLaunchFacts() {
  LaunchFacts facts;
  facts.pid = static_cast<int>(getpid());
  if (const char* value = getenv("INVOCATION_ID")) facts.invocation_id = value;
  if (const char* value = getenv("SYSTEMD_EXEC_PID")) facts.systemd_exec_pid = value;
  return facts;
}

}  // namespace geoip
