// A TCP socket in the LISTEN state and the process that called listen() on
// it, as the probe records it and as /proc shows it at start.
#ifndef EXPORTER_NET_LISTENING_SOCKET_H_
#define EXPORTER_NET_LISTENING_SOCKET_H_

#include <cstdint>
#include <string>

namespace geoip {

struct ListeningSocket {
  uint32_t netns = 0;      // inode of its network namespace (/proc/PID/ns/net)
  uint16_t port = 0;       // its local port
  uint32_t pid = 0;        // the process (thread group) that listens
  uint64_t cgroup_id = 0;  // that process's cgroup v2 id; 0 if not known
  std::string comm;        // that process's name (15 bytes at most)
};

}  // namespace geoip

#endif  // EXPORTER_NET_LISTENING_SOCKET_H_
