// Failed inbound connections per (country, port label, reason): the
// aggregation behind ebpf_geoip_failed_connections_total and
// /api/v1/failures.
#ifndef EXPORTER_STATS_FAILURE_COUNTS_H_
#define EXPORTER_STATS_FAILURE_COUNTS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "exporter/geo/country.h"
#include "exporter/probe/accept_probe.h"

namespace geoip {

// Not thread-safe: ConnectionStats owns one and guards it. Counts only ever
// increase. Bounded without a cap of its own: countries are a fixed set,
// the kernel reports a port only if it is watched (any other is 0, label
// "other"), and reasons are FailureReason's.
class FailureCounts {
 public:
  // One (country, port, reason) series; port 0 is "other".
  struct Series {
    CountryId country;
    uint16_t port;
    FailureReason reason;
    uint64_t count;
  };

  // Adds `count` failures; a count of 0 changes nothing.
  void Add(CountryId country, uint16_t port, FailureReason reason, uint64_t count);

  // Every series, sorted by (country label, port with "other" last, reason).
  std::vector<Series> Snapshot() const;

  // Number of series.
  size_t size() const { return counts_.size(); }

  // Approximate bytes held.
  size_t MemoryBytes() const;

 private:
  using Key = std::tuple<CountryId, uint16_t, FailureReason>;
  absl::flat_hash_map<Key, uint64_t> counts_;
};

// The port label of a failure: the number, or "other" for 0.
std::string FailurePortLabel(uint16_t port);

// The reason label: "refused" or "incomplete"; "unknown" for a value this
// exporter does not know (a newer probe's).
absl::string_view FailureReasonLabel(FailureReason reason);

}  // namespace geoip

#endif  // EXPORTER_STATS_FAILURE_COUNTS_H_
