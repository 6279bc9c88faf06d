// Names the listener behind a socket the way the exporter does: from the
// process's cgroups (/proc/PID/cgroup, readable by anyone), the container
// runtime's own state where readable, and the process name.
#ifndef EXPORTER_SERVICES_LISTENER_NAMER_H_
#define EXPORTER_SERVICES_LISTENER_NAMER_H_

#include <string>

#include "exporter/listeners/container_names.h"
#include "exporter/listeners/service_name.h"
#include "exporter/net/listening_socket.h"

namespace geoip {

class ListenerNamer {
 public:
  // `proc_root` is /proc but for tests.
  explicit ListenerNamer(std::string proc_root = "/proc");

  // A process that is gone by now is named by its process name alone.
  ListenerIdentity Name(const ListeningSocket& socket);

 private:
  const std::string proc_root_;
  ContainerNames containers_;
};

}  // namespace geoip

#endif  // EXPORTER_SERVICES_LISTENER_NAMER_H_
