// Which service accepted a connection: (network namespace, port) → the
// listener there and its name. Learnt from the probe's record of listen()
// calls and, at start, from /proc; named by a Namer (process, cgroup,
// container runtime).
#ifndef EXPORTER_SERVICES_SERVICE_REGISTRY_H_
#define EXPORTER_SERVICES_SERVICE_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "exporter/listeners/service_name.h"
#include "exporter/net/listening_socket.h"
#include "exporter/stats/service_names.h"

namespace geoip {

// Thread-safe: the drain thread learns and asks, scrapes list.
class ServiceRegistry {
 public:
  // Names the listener behind a socket; may read /proc.
  using Namer = std::function<ListenerIdentity(const ListeningSocket&)>;

  // A listener as ebpf_geoip_listener_info shows it.
  struct Listener {
    uint32_t netns = 0;
    uint16_t port = 0;
    ServiceId service = ServiceNames::kUnknown;  // meaningful once counted
    bool counted = false;                        // it has had a connection, so service is set
    ListenerIdentity identity;
  };

  // Shares `names` (must outlive it). Remembers at most `max_listeners`
  // (network namespace, port) pairs; the least recently learnt go first.
  ServiceRegistry(ServiceNames* names, Namer namer, size_t max_listeners);

  ServiceRegistry(const ServiceRegistry&) = delete;
  ServiceRegistry& operator=(const ServiceRegistry&) = delete;

  // Learns sockets: a new (netns, port), or one another process now listens
  // on, is named; one seen before with the same process is left alone.
  void Learn(const std::vector<ListeningSocket>& sockets);

  // The service of connections to `port` in `netns`: the listener's there,
  // or ServiceNames::kUnknown if none was ever seen. A listener's name
  // takes one of the ServiceNames' places only here, at its first
  // connection, so idle listeners never push busy ones to "other".
  ServiceId ServiceOf(uint32_t netns, uint16_t port);

  // Every listener remembered, by (netns, port).
  std::vector<Listener> Listeners() const;

 private:
  struct Entry {
    uint32_t pid = 0;
    std::string comm;
    Listener listener;
    bool interned = false;  // listener.service is set
  };
  using Key = std::pair<uint32_t, uint16_t>;  // (netns, port)

  ServiceNames* const names_;
  const Namer namer_;
  const size_t max_listeners_;
  // Guards everything below. A standard mutex: see "ThreadSanitizer" in
  // CMakeLists.txt.
  mutable std::mutex mu_;
  absl::flat_hash_map<Key, Entry> entries_;
  std::deque<Key> learnt_order_;  // oldest first, for eviction
};

}  // namespace geoip

#endif  // EXPORTER_SERVICES_SERVICE_REGISTRY_H_
