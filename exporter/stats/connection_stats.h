// The exporter's aggregation state: accepted connections, distinct peer
// addresses and traffic per (country, local port, service), accepted
// connections per network, the heaviest peers, lifetimes of closed
// connections per (port, service), failed connections, the word cloud, plus
// a short log of recent connections for the live view.
#ifndef EXPORTER_STATS_CONNECTION_STATS_H_
#define EXPORTER_STATS_CONNECTION_STATS_H_

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "exporter/geo/country.h"
#include "exporter/geo/network.h"
#include "exporter/net/address.h"
#include "exporter/probe/accept_probe.h"
#include "exporter/stats/failure_counts.h"
#include "exporter/stats/network_counts.h"
#include "exporter/stats/service_names.h"
#include "exporter/stats/top_peers.h"
#include "exporter/stats/unique_counter.h"
#include "exporter/stats/word_cloud.h"

namespace geoip {

// Thread-safe. Written by one thread (the drain), read by many (scrapes, the
// JSON API, live-stream clients). Connection counters only ever increase:
// nothing is evicted, so Prometheus never sees a spurious reset. Memory grows
// with the number of (country, port, service) series, which the fixed set of
// countries, the port list and the service cap (ServiceNames) bound, and
// each unique counter is bounded itself (see UniqueCounter). One lock and
// one Version() cover everything, so a live-stream client wakes for
// connections, traffic and failures alike.
class ConnectionStats {
 public:
  struct Options {
    // Distinct addresses each series/country counts exactly before switching
    // to a HyperLogLog estimate.
    size_t exact_unique_limit = UniqueCounter::kDefaultExactLimit;
    // Number of recent connections kept for Recent().
    size_t recent_capacity = 256;
    // ASes with a label of their own (see NetworkCounts).
    size_t max_network_labels = 500;
    // Keys of the per-network detail (see NetworkCounts).
    size_t max_network_keys = NetworkCounts::kDefaultMaxKeys;
    // Counters per (port, service) for the heaviest peers; 0: none kept.
    size_t top_peers = 64;
    // Whether top peers are whole addresses rather than /24 and /48.
    bool full_peer_addresses = false;
    // Words the word cloud keeps.
    size_t max_words = 100;
  };

  // What happened to the words posted (see WordCloud).
  struct WordCounts {
    uint64_t counted = 0;
    uint64_t evicted = 0;
    std::array<uint64_t, kWordRefusalCount> refused{};
  };

  // What the accepted connections of a series (or a country) carried, as
  // the kernel counts it for their sockets, and those that closed.
  struct Traffic {
    uint64_t received_bytes = 0;      // payload from the peers
    uint64_t sent_bytes = 0;          // payload to the peers they acknowledged
    uint64_t closed_connections = 0;  // connections that ended
    uint64_t lifetime_ns = 0;         // their lifetimes, summed
  };

  // One (country, port, service) series.
  struct Series {
    CountryId country;
    uint16_t port;
    ServiceId service;
    uint64_t connections;
    uint64_t unique_addresses;
    Traffic traffic;
  };

  // A country's totals over all ports, or over one port.
  struct CountryTotal {
    CountryId country;
    uint64_t connections;
    uint64_t unique_addresses;
    Traffic traffic;
  };

  // Lifetimes of the closed connections of one (port, service), over all
  // countries: a histogram by kDurationBounds.
  struct Lifetimes {
    uint16_t port;
    ServiceId service;
    // Not cumulative: bucket i counts lifetimes in (bound i-1, bound i];
    // the last is everything longer than the last bound.
    std::array<uint64_t, kDurationBuckets> buckets;
    uint64_t sum_ns;
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
  // `address`, to its network's and to the top peers. address is nullptr
  // when the kernel could not record the peer (overflow); then unique
  // counts and top peers are left alone. A count of 0 changes nothing.
  void Record(CountryId country, uint16_t port, const IpAddress* address, uint64_t count,
              absl::Time when, ServiceId service = ServiceNames::kUnknown,
              NetworkId network = NetworkId::Unknown());

  // Adds the traffic of connections to local port traffic.port to the
  // series (country, traffic.port, service), creating it if need be (a
  // connection accepted before the exporter started has none), and the
  // lifetimes of those that closed to the (port, service) histogram.
  // traffic's address and netns are not read. Traffic of all zeros changes
  // nothing.
  void RecordTraffic(CountryId country, ServiceId service, const DrainedTraffic& traffic);

  // Adds `count` failed connections from `country` to local `port` (0: a
  // port not watched). A count of 0 changes nothing.
  void RecordFailure(CountryId country, uint16_t port, FailureReason reason, uint64_t count);

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

  // The lifetime histograms, sorted by (port, service).
  std::vector<Lifetimes> LifetimeHistograms() const;

  // Failed connections, as FailureCounts::Snapshot() sorts them.
  std::vector<FailureCounts::Series> Failures() const;

  // Counts one posted word (see WordCloud::Add); a refused one changes
  // only the refusal counts.
  absl::Status AddWord(std::string_view word);

  // Up to `max` words, most counted first.
  std::vector<WordCloud::Entry> Words(size_t max) const;

  // Totals of the words posted.
  WordCounts WordTotals() const;

  // The heaviest peers a port and/or service selects (see TopPeers::Top).
  std::vector<TopPeers::Peer> Peers(std::optional<uint16_t> port, std::optional<ServiceId> service,
                                    size_t limit) const;

  // Whether top peers are kept at all (Options::top_peers > 0).
  bool keeps_peers() const { return options_.top_peers > 0; }

  // Accepted connections per label network (see NetworkCounts).
  std::vector<std::pair<NetworkId, uint64_t>> NetworkLabelTotals() const;

  // The top networks a filter selects (see NetworkCounts::TopNetworks).
  NetworkCounts::Top TopNetworks(const NetworkCounts::Filter& filter, size_t limit) const;

  // ASes counted under the label "other", and connections past the
  // per-network detail's bound (see NetworkCounts).
  uint64_t UnlabelledNetworks() const;
  uint64_t NetworkDetailOverflow() const;

  // Up to `max` most recent Record() calls, newest first.
  std::vector<RecentConnection> Recent(size_t max) const;

  // Increases on every Record*() that changes anything.
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
    Traffic traffic;
  };
  using SeriesKey = std::tuple<CountryId, uint16_t, ServiceId>;
  using LifetimesKey = std::pair<uint16_t, ServiceId>;

  // Bumps the version and wakes the waiters; releases `lock`.
  void Changed(std::unique_lock<std::shared_mutex>& lock);

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
  absl::flat_hash_map<LifetimesKey, Lifetimes> lifetimes_;
  FailureCounts failures_;
  NetworkCounts networks_;
  TopPeers peers_;
  WordCloud words_;
  // Ring of recent connections; next_recent_ is where the next one goes.
  std::vector<RecentConnection> recent_;
  size_t next_recent_ = 0;
  uint64_t version_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_STATS_CONNECTION_STATS_H_
