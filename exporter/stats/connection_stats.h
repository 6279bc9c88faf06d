// The exporter's aggregation state: accepted connections and distinct peer
// addresses per (country, local port, service), plus a short log of recent
// connections for the live view.
#ifndef EXPORTER_STATS_CONNECTION_STATS_H_
#define EXPORTER_STATS_CONNECTION_STATS_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "exporter/geo/country.h"
#include "exporter/net/address.h"
#include "exporter/stats/service_names.h"
#include "exporter/stats/unique_counter.h"

namespace geoip {

// Thread-safe. Written by one thread (the drain), read by many (scrapes, the
// JSON API, live-stream clients). Connection counters only ever increase:
// nothing is evicted, so Prometheus never sees a spurious reset. Memory grows
// with the number of (country, port, service) series, which the fixed set of
// countries, the port list and the service cap (ServiceNames) bound, and
// each unique counter is bounded itself (see UniqueCounter).
class ConnectionStats {
 public:
  struct Options {
    // Distinct addresses each series/country counts exactly before switching
    // to a HyperLogLog estimate.
    size_t exact_unique_limit = UniqueCounter::kDefaultExactLimit;
    // Number of recent connections kept for Recent().
    size_t recent_capacity = 256;
  };

  // One (country, port, service) series.
  struct Series {
    CountryId country;
    uint16_t port;
    ServiceId service;
    uint64_t connections;
    uint64_t unique_addresses;
  };

  // A country's totals over all ports, or over one port.
  struct CountryTotal {
    CountryId country;
    uint64_t connections;
    uint64_t unique_addresses;
  };

  // One Record() call, as the live view shows it.
  struct RecentConnection {
    absl::Time time;
    CountryId country;
    uint16_t port;
    ServiceId service;
    IpAddress address;  // meaningful only if has_address
    bool has_address;
    uint64_t count;
  };

  explicit ConnectionStats(Options options);
  ConnectionStats() : ConnectionStats(Options()) {}

  ConnectionStats(const ConnectionStats&) = delete;
  ConnectionStats& operator=(const ConnectionStats&) = delete;

  // Adds `count` connections to the series (country, port, service) from
  // `address`. address is nullptr when the kernel could not record the peer
  // (overflow); then unique counts are left alone. A count of 0 changes
  // nothing.
  void Record(CountryId country, uint16_t port, const IpAddress* address, uint64_t count,
              absl::Time when, ServiceId service = ServiceNames::kUnknown);

  // Every series, sorted by (country label, port, service).
  std::vector<Series> Snapshot() const;

  // Which series a total covers: all, or those of one port and/or service.
  struct Filter {
    std::optional<uint16_t> port;
    std::optional<ServiceId> service;
  };

  // Per-country totals sorted by country label: across everything (uniques
  // are distinct addresses over all series, not a sum), or over the series
  // the filter selects (uniques then summed over its series).
  std::vector<CountryTotal> CountryTotals(const Filter& filter) const;

  // The local ports seen so far, ascending.
  std::vector<uint16_t> Ports() const;

  // The services seen so far, by id.
  std::vector<ServiceId> Services() const;

  // Up to `max` most recent Record() calls, newest first.
  std::vector<RecentConnection> Recent(size_t max) const;

  // Increases on every Record() that changes anything.
  uint64_t Version() const;

  // Blocks until Version() differs from seen_version or timeout passes;
  // true if it changed. Lets live-stream clients wait without polling.
  bool WaitForChange(uint64_t seen_version, absl::Duration timeout) const;

  // Number of (country, port) series.
  size_t SeriesCount() const;

  // Approximate bytes held: what the memory tests and the BM_StatsMemory
  // micro-benchmark bound.
  size_t MemoryBytes() const;

 private:
  struct Counts {
    explicit Counts(size_t exact_limit) : uniques(exact_limit) {}
    uint64_t connections = 0;
    UniqueCounter uniques;
  };
  using SeriesKey = std::tuple<CountryId, uint16_t, ServiceId>;

  const Options options_;
  // Guards everything below. Record() takes it exclusively, the readers
  // shared. A standard mutex, not absl::Mutex: see "ThreadSanitizer" in
  // CMakeLists.txt.
  mutable std::shared_mutex mu_;
  mutable std::condition_variable_any changed_;  // notified on every Record
  absl::flat_hash_map<SeriesKey, Counts> series_;
  // Per-country counts over all ports; separate from series_ because
  // distinct addresses cannot be summed across ports.
  absl::flat_hash_map<CountryId, Counts> countries_;
  // Ring of recent connections; next_recent_ is where the next one goes.
  std::vector<RecentConnection> recent_;
  size_t next_recent_ = 0;
  uint64_t version_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_STATS_CONNECTION_STATS_H_
