// The heaviest peers per (port, service): a Space-Saving sketch (Metwally,
// Agrawal and El Abbadi, "Efficient computation of frequent and top-k
// elements in data streams", 2005) per pair, so memory stays bounded
// however many distinct peers connect. The aggregation behind
// /api/v1/peers and the live map's top-peers panel; never on /metrics.
#ifndef EXPORTER_STATS_TOP_PEERS_H_
#define EXPORTER_STATS_TOP_PEERS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "exporter/geo/country.h"
#include "exporter/net/address.h"
#include "exporter/stats/service_names.h"

namespace geoip {

// Counts connections per peer key in one sketch of `capacity` counters per
// (port, service). The key is the peer's display form, fixed at
// construction: its /24 (IPv4) or /48 (IPv6) network by default, the whole
// address only with `full_addresses`, so whole addresses are never stored
// unless asked for.
//
// Error bound of one sketch that has counted N connections:
//  - every reported `connections` is an upper bound of the key's true
//    count, and `connections - max_error` a lower bound;
//  - `max_error` is the smallest count in the sketch when the key took its
//    counter, so max_error <= N / capacity;
//  - every key whose true count exceeds N / capacity is present;
//  - while a sketch has seen at most `capacity` distinct keys it has never
//    evicted one, and every count is exact (max_error 0).
// A query that selects several sketches (a port with several services, or
// no filter) merges them per key: connections and max_error are the sums
// over the sketches holding the key, plus, for each selected sketch that
// has evicted and does not hold the key, that sketch's smallest count in
// both (the key may have been counted there and evicted). So a merged entry
// keeps the meaning above: connections >= true count >= connections -
// max_error, and max_error <= sum of N_s / capacity over the selected
// sketches s. Sketches that never evicted add nothing: exact stays exact.
//
// Each counter keeps the country of the last connection recorded for its
// key (a /24 is nearly always in one country).
//
// Not thread-safe: ConnectionStats owns one and guards it.
class TopPeers {
 public:
  // One row of Top().
  struct Peer {
    // "81.2.69.0/24", "2001:db8:1::/48", or the whole address.
    std::string address;
    CountryId country;
    uint64_t connections;
    uint64_t max_error;
  };

  // `capacity` counters per (port, service); 0 turns top peers off (Record
  // does nothing, Top returns nothing).
  TopPeers(size_t capacity, bool full_addresses);

  // Counts `count` connections from `peer` to `port` under `service`. A
  // count of 0 changes nothing. O(log capacity).
  void Record(CountryId country, uint16_t port, ServiceId service, const IpAddress& peer,
              uint64_t count);

  // Up to `limit` peers of the sketches matching both filters (nullopt
  // matches any), most connections first; ties by smaller max_error, then
  // by address (IPv4 before IPv6, then numerically).
  std::vector<Peer> Top(std::optional<uint16_t> port, std::optional<ServiceId> service,
                        size_t limit) const;

  // Counters per (port, service).
  size_t capacity() const { return capacity_; }
  // Whether keys are whole addresses rather than /24 and /48 networks.
  bool full_addresses() const { return full_addresses_; }

  // Counters held, over every sketch.
  size_t size() const;

  // Approximate heap plus inline bytes held: sizeof(TopPeers), the table of
  // sketches, and at most SketchMemoryBound(capacity) per sketch, however
  // many distinct peers were recorded.
  size_t MemoryBytes() const;

  // The most heap one sketch of `capacity` counters holds: its counters, its
  // heap and its key index at the hash table's largest slack.
  static size_t SketchMemoryBound(size_t capacity);

 private:
  struct Counter {
    IpAddress key;
    CountryId country;
    uint32_t heap_index;  // where this counter sits in Sketch::heap
    uint64_t count;
    uint64_t error;
  };

  // One Space-Saving summary: counters in stable slots, a binary min-heap
  // of slot numbers ordered by count, and the index from key to slot.
  struct Sketch {
    std::vector<Counter> slots;
    std::vector<uint32_t> heap;
    absl::flat_hash_map<IpAddress, uint32_t> index;
    bool evicted = false;  // a key ever lost its counter: counts are estimates

    void Add(CountryId country, const IpAddress& key, uint64_t count, size_t capacity);
    uint64_t MinCount() const { return heap.empty() ? 0 : slots[heap[0]].count; }
    size_t MemoryBytes() const;

   private:
    void SiftDown(size_t at);
    void Place(size_t at, uint32_t slot);
  };

  using SketchKey = std::pair<uint16_t, ServiceId>;

  // The key of `peer` as this instance stores it.
  IpAddress KeyOf(const IpAddress& peer) const;
  // Its text form, with the prefix length unless full_addresses_.
  std::string Display(const IpAddress& key) const;

  const size_t capacity_;
  const bool full_addresses_;
  absl::flat_hash_map<SketchKey, Sketch> sketches_;
};

}  // namespace geoip

#endif  // EXPORTER_STATS_TOP_PEERS_H_
