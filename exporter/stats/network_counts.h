// Accepted connections per network (autonomous system), country, port and
// service: the aggregation behind
// ebpf_geoip_accepted_connections_by_asn_total and /api/v1/networks.
#ifndef EXPORTER_STATS_NETWORK_COUNTS_H_
#define EXPORTER_STATS_NETWORK_COUNTS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "exporter/geo/country.h"
#include "exporter/geo/network.h"
#include "exporter/stats/service_names.h"

namespace geoip {

// Not thread-safe: ConnectionStats owns one and guards it. Counts only ever
// increase. Two bounds, and totals stay exact under both:
// - Labels. The first `max_labels` ASes seen get a label of their own, for
//   good (first come, so no counter ever moves between labels and
//   decreases); the connections of every later AS are counted under
//   "other". The special networks (private, unknown, overflow) always have
//   theirs.
// - Memory. The API's detail (per AS, country, port and service) holds at
//   most `max_keys` keys; past that, a new key's connections are kept
//   under network "other" with the same country, port and service.
class NetworkCounts {
 public:
  static constexpr size_t kDefaultMaxKeys = 65536;

  NetworkCounts(size_t max_labels, size_t max_keys);

  // Adds `count` connections; a count of 0 changes nothing.
  void Add(NetworkId network, CountryId country, uint16_t port, ServiceId service, uint64_t count);

  // Connections per label network (admitted ASes, the special networks, and
  // "other"), by network.
  std::vector<std::pair<NetworkId, uint64_t>> LabelTotals() const;

  // Which connections a query covers; absent means all.
  struct Filter {
    std::optional<CountryId> country;
    std::optional<uint16_t> port;
    std::optional<ServiceId> service;
  };

  // The networks with the most connections the filter selects, most first
  // (ties by network), at most `limit` of them; `other` sums the rest, the
  // networks past the limit and those past the memory bound.
  struct Top {
    std::vector<std::pair<NetworkId, uint64_t>> networks;
    uint64_t other = 0;
  };
  Top TopNetworks(const Filter& filter, size_t limit) const;

  // ASes that were given "other" as their label since start (each once).
  uint64_t unlabelled() const { return unlabelled_; }
  // Connections kept under "other" because the detail was full.
  uint64_t past_max_keys() const { return past_max_keys_; }

  // Approximate bytes held.
  size_t MemoryBytes() const;

 private:
  using Key = std::tuple<NetworkId, CountryId, uint16_t, ServiceId>;

  const size_t max_labels_;
  const size_t max_keys_;
  absl::flat_hash_map<Key, uint64_t> detail_;
  absl::flat_hash_map<NetworkId, uint64_t> label_totals_;
  absl::flat_hash_set<NetworkId> admitted_;  // ASes with their own label
  // ASes counted under "other", to count each once; bounded by the ASes
  // the database knows (about 100,000).
  absl::flat_hash_set<NetworkId> refused_;
  uint64_t unlabelled_ = 0;
  uint64_t past_max_keys_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_STATS_NETWORK_COUNTS_H_
