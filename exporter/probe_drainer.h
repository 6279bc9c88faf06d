// The drain thread: moves the kernel's counts out of the probe every
// --bpf.drain-interval, or early when the map being filled is half full,
// into the recorder: connections and their traffic each under the service
// of the listener that accepted them (learnt from the probe's listeners
// first, when they changed), failed connections under none.
#ifndef EXPORTER_PROBE_DRAINER_H_
#define EXPORTER_PROBE_DRAINER_H_

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/services/service_registry.h"
#include "exporter/stats/recorder.h"

namespace geoip {

// Records what one drain collected, read at `now`: connections and traffic
// under the service of (netns, port), failures and everything that
// overflowed the kernel's map under country="overflow".
void RecordDrain(const DrainResult& result, ServiceRegistry* services, ConnectionRecorder* recorder,
                 absl::Time now);

// Shares (does not own) the probe, the registry and the recorder, which must
// outlive it.
class ProbeDrainer {
 public:
  ProbeDrainer(AcceptProbe* probe, ServiceRegistry* services, ConnectionRecorder* recorder,
               absl::Duration interval)
      : probe_(probe), services_(services), recorder_(recorder), interval_(interval) {}
  // Stops the thread. What was counted since the last drain stays in the
  // kernel: a pinned probe keeps it for the next exporter.
  ~ProbeDrainer();

  // Starts the thread. Threads inherit privileges: start it once they are
  // dropped.
  void Start();

  ProbeDrainer(const ProbeDrainer&) = delete;
  ProbeDrainer& operator=(const ProbeDrainer&) = delete;

  // Drains that failed (the reason goes to stderr).
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  void DrainOnce();

  AcceptProbe* const probe_;
  ServiceRegistry* const services_;
  ConnectionRecorder* const recorder_;
  // ListenersChanged() when the registry last learnt; none yet, so the
  // first drain reads what a pinned probe recorded before this exporter.
  uint64_t listeners_seen_ = ~uint64_t{0};
  const absl::Duration interval_;
  std::atomic<uint64_t> errors_{0};
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace geoip

#endif  // EXPORTER_PROBE_DRAINER_H_
