// What --bpf.pin-path=auto means: pin the probe when the exporter runs as a
// service, which should keep counting across restarts, and not when someone
// started it from a shell, where Ctrl-C should leave nothing running.
#ifndef EXPORTER_UTIL_AUTO_PIN_H_
#define EXPORTER_UTIL_AUTO_PIN_H_

#include <string>

#include "absl/strings/string_view.h"

namespace geoip {

// What the process can see of who started it, read by ReadLaunchFacts().
struct LaunchFacts {
  int pid = 0;                   // getpid(), in the exporter's PID namespace
  std::string invocation_id;     // $INVOCATION_ID: systemd sets it for a unit's processes
  std::string systemd_exec_pid;  // $SYSTEMD_EXEC_PID: the PID systemd ran (systemd >= 248)
};

// Who started the exporter.
enum class Launcher {
  kShell,          // a terminal, a script or a test: anything not below
  kSystemd,        // systemd, as a unit's ExecStart= process
  kContainerInit,  // PID 1 of its PID namespace: a container's entrypoint
};

// Decides who started the process. systemd passes INVOCATION_ID to every
// process of a unit, so a shell in a terminal emulator that runs as a user
// service has it too; SYSTEMD_EXEC_PID, where systemd sets it, names the
// one process systemd ran, and only that one counts as the service.
Launcher DetectLauncher(const LaunchFacts& facts);

// A short phrase for logs: "started by systemd" and so on.
absl::string_view LauncherDescription(Launcher launcher);

// What --bpf.pin-path=auto resolves to.
struct AutoPinPath {
  std::string path;  // empty: no pinning
  std::string why;   // one line for the log
};

// Resolves --bpf.pin-path=auto: `bpffs_default` (the pin directory under
// /sys/fs/bpf, empty when no bpffs is mounted there) for a service, no
// pinning for a shell.
AutoPinPath ChooseAutoPinPath(const LaunchFacts& facts, absl::string_view bpffs_default);

// Reads the facts of this process: its PID and environment.
LaunchFacts ReadLaunchFacts();

}  // namespace geoip

#endif  // EXPORTER_UTIL_AUTO_PIN_H_
