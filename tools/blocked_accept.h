// Which threads of this process are asleep in accept(), read from
// /proc/self/task/TID/syscall. ebpf_geoip_traffic uses it to say "listening"
// only once every acceptor thread is blocked, so a test can start an exporter
// knowing the accepts are already in progress.
#ifndef TOOLS_BLOCKED_ACCEPT_H_
#define TOOLS_BLOCKED_ACCEPT_H_

#include <map>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

// The listening fd of a thread blocked in accept() or accept4(), given the
// text of its /proc/TID/syscall ("288 0x3 0x7ffc... ..." on x86-64), or
// nothing for any other syscall, "running", or a thread not in a syscall.
std::optional<int> BlockedAcceptFd(absl::string_view syscall_text);

// Counts, per listening fd, the threads of process `pid` (0: this one)
// blocked in accept() or accept4(). Threads that exit while being read are
// skipped.
absl::StatusOr<std::map<int, int>> BlockedAcceptorsByFd(int pid = 0);

}  // namespace geoip

#endif  // TOOLS_BLOCKED_ACCEPT_H_
