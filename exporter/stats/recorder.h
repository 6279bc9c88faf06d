// The one way a connection enters the statistics: geolocated, then
// recorded. Both sources feed it: the probe's drain thread and, with
// --connections.source=simulated, POST /api/v1/connections. The probe's
// traffic and failed connections take the same path.
#ifndef EXPORTER_STATS_RECORDER_H_
#define EXPORTER_STATS_RECORDER_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "exporter/geo/country.h"
#include "exporter/geo/geolocator.h"
#include "exporter/net/address.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/stats/connection_stats.h"

namespace geoip {

// Thread-safe. Shares (does not own) the geolocator and the statistics,
// which must outlive it.
class ConnectionRecorder {
 public:
  ConnectionRecorder(Geolocator* geolocator, ConnectionStats* stats)
      : geolocator_(geolocator), stats_(stats) {}

  ConnectionRecorder(const ConnectionRecorder&) = delete;
  ConnectionRecorder& operator=(const ConnectionRecorder&) = delete;

  // Records `count` connections from `address` to local `port` of
  // `service`; returns the country they were counted under.
  CountryId Record(const IpAddress& address, uint16_t port, ServiceId service, uint64_t count,
                   absl::Time now);

  // Records `count` connections to `port` whose peer address the kernel
  // could not keep: counted under country="overflow", and in overflowed().
  void RecordOverflow(uint16_t port, ServiceId service, uint64_t count, absl::Time now);

  // Records the traffic of connections from traffic.address to local
  // traffic.port of `service`; returns the country it was counted under.
  CountryId RecordTraffic(const DrainedTraffic& traffic, ServiceId service);

  // Records traffic whose peer address the kernel could not keep: under
  // country="overflow" and service "unknown", at traffic.port.
  void RecordTrafficOverflow(const DrainedTraffic& traffic);

  // Records failed connections from failure.address; returns the country
  // they were counted under.
  CountryId RecordFailure(const DrainedFailure& failure);

  // Records failed connections whose peer address the kernel could not
  // keep: under country="overflow".
  void RecordFailureOverflow(const DrainedFailure& failure);

  // Connections recorded through RecordOverflow since construction.
  uint64_t overflowed() const { return overflowed_.load(std::memory_order_relaxed); }

 private:
  Geolocator* const geolocator_;
  ConnectionStats* const stats_;
  std::atomic<uint64_t> overflowed_{0};
};

}  // namespace geoip

#endif  // EXPORTER_STATS_RECORDER_H_
