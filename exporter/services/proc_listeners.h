// The sockets that were listening before the probe could see listen():
// read once at start, as root, from /proc. Later listeners come from the
// probe (AcceptProbe::Listeners).
#ifndef EXPORTER_SERVICES_PROC_LISTENERS_H_
#define EXPORTER_SERVICES_PROC_LISTENERS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "exporter/net/listening_socket.h"

namespace geoip {

// (socket inode, local port) of every TCP socket in LISTEN state in the
// text of /proc/PID/net/tcp or tcp6.
std::vector<std::pair<uint64_t, uint16_t>> ParseProcNetTcp(absl::string_view text);

struct ProcListenerScan {
  // One entry per (network namespace, port), the lowest PID first.
  // cgroup_id is 0: the namer reads /proc/PID/cgroup instead.
  std::vector<ListeningSocket> listening;
  // Processes whose network namespace or open files this process may not
  // read: without CAP_SYS_PTRACE (and CAP_DAC_READ_SEARCH for other users),
  // every process holding capabilities it lacks.
  int unreadable = 0;
};

// Every listening TCP socket of every process this process may inspect
// (all of them as root), with the process that holds it.
ProcListenerScan ScanProcListeners();

}  // namespace geoip

#endif  // EXPORTER_SERVICES_PROC_LISTENERS_H_
