#include "exporter/util/auto_pin.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace geoip {
namespace {

constexpr char kInvocation[] = "3f1c0e9d8b7a46c5a1e2d3c4b5a69788";

struct LauncherCase {
  std::string name;
  LaunchFacts facts;
  Launcher want;
};

TEST(DetectLauncher, TellsServicesFromShells) {
  const std::vector<LauncherCase> cases = {
      {"shell, or sudo (which drops both variables)", {4242, "", ""}, Launcher::kShell},
      {"systemd >= 248, ExecStart process", {4242, kInvocation, "4242"}, Launcher::kSystemd},
      {"systemd < 248 sets no SYSTEMD_EXEC_PID", {4242, kInvocation, ""}, Launcher::kSystemd},
      // A terminal emulator running as a user service hands its variables
      // to the shells in its windows, and they to what they start.
      {"shell under a systemd unit's process", {4242, kInvocation, "1000"}, Launcher::kShell},
      {"unreadable SYSTEMD_EXEC_PID proves nothing", {4242, kInvocation, "42x"}, Launcher::kShell},
      {"SYSTEMD_EXEC_PID without INVOCATION_ID", {4242, "", "4242"}, Launcher::kShell},
      {"container entrypoint", {1, "", ""}, Launcher::kContainerInit},
      {"container entrypoint with leaked variables",
       {1, kInvocation, "1000"},
       Launcher::kContainerInit},
      {"systemd-nspawn container's unit", {1, kInvocation, "1"}, Launcher::kSystemd},
  };
  for (const LauncherCase& c : cases) {
    EXPECT_EQ(DetectLauncher(c.facts), c.want) << c.name;
  }
}

struct PinCase {
  std::string name;
  LaunchFacts facts;
  std::string bpffs_default;
  std::string want_path;
  std::string want_why;
};

TEST(ChooseAutoPinPath, PinsOnlyServicesAndOnlyOnBpffs) {
  const std::string pins = "/sys/fs/bpf/ebpf_geoip";
  // One case a row.
  // clang-format off
  const std::vector<PinCase> cases = {
      {"shell", {4242, "", ""}, pins, "",
       "no pinning (started from a shell): stopping the exporter detaches the probe"},
      {"shell without bpffs", {4242, "", ""}, "", "",
       "no pinning (started from a shell): stopping the exporter detaches the probe"},
      {"systemd", {4242, kInvocation, "4242"}, pins, pins,
       "pinning at /sys/fs/bpf/ebpf_geoip (started by systemd): the probe keeps counting "
       "while the exporter restarts"},
      {"systemd without bpffs", {4242, kInvocation, "4242"}, "", "",
       "no pinning (started by systemd, but no bpffs is mounted at /sys/fs/bpf)"},
      {"container", {1, "", ""}, pins, pins,
       "pinning at /sys/fs/bpf/ebpf_geoip (PID 1, a container's entrypoint): the probe keeps "
       "counting while the exporter restarts"},
      // A container sees the host's bpffs only when it is mounted into it.
      {"container without bpffs", {1, "", ""}, "", "",
       "no pinning (PID 1, a container's entrypoint, but no bpffs is mounted at /sys/fs/bpf)"},
  };
  // clang-format on
  for (const PinCase& c : cases) {
    const AutoPinPath got = ChooseAutoPinPath(c.facts, c.bpffs_default);
    EXPECT_EQ(got.path, c.want_path) << c.name;
    EXPECT_EQ(got.why, c.want_why) << c.name;
  }
}

}  // namespace
}  // namespace geoip
