// Maps peer addresses to countries and networks (autonomous systems):
// classification of non-routable addresses, a lookup cache, and the
// (replaceable) GeoIP and ASN databases.
#ifndef EXPORTER_GEO_GEOLOCATOR_H_
#define EXPORTER_GEO_GEOLOCATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "exporter/geo/asn_database.h"
#include "exporter/geo/country.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/geo/network.h"
#include "exporter/net/address.h"

namespace geoip {

// Where a peer is.
struct Location {
  CountryId country;
  NetworkId network;
};

// Thread-safe: Locate, SetDatabase, database and stats may be called from
// any threads. Locate is meant for one thread (the drain thread), so its
// mutex is only contended while the database is being swapped.
class Geolocator {
 public:
  // Totals since construction; they only ever increase.
  struct Stats {
    uint64_t lookups = 0;       // Locate calls, private addresses included
    uint64_t cache_hits = 0;    // routable addresses answered by the cache
    uint64_t cache_misses = 0;  // routable addresses not in the cache
    uint64_t failures = 0;      // database lookups that returned an error
  };

  static constexpr size_t kDefaultCacheCapacity = 65536;

  // Shares database, which may be null (every routable address is then
  // unknown). The cache holds at most cache_capacity addresses; 0 turns it
  // off.
  explicit Geolocator(std::shared_ptr<const GeoIpDatabase> database,
                      size_t cache_capacity = kDefaultCacheCapacity);

  // Private for non-routable addresses, else the databases' country and
  // network, else Unknown (none, or a failed lookup, which is counted).
  // Without an ASN database every routable network is Unknown.
  Location Locate(const IpAddress& address);

  // Replaces the database (hot reload) and empties the cache, whose answers
  // came from the old one.
  void SetDatabase(std::shared_ptr<const GeoIpDatabase> database);

  // Sets the ASN database (null: none) and empties the cache.
  void SetAsnDatabase(std::shared_ptr<const AsnDatabase> database);

  // The databases in use, for reporting their metadata.
  std::shared_ptr<const GeoIpDatabase> database() const;
  std::shared_ptr<const AsnDatabase> asn_database() const;

  // The organisation the ASN database named for `network` when an address
  // was first placed in it; empty if none (or not an AS).
  std::string NetworkName(NetworkId network) const;

  // A snapshot of the totals; never waits for a lookup.
  Stats stats() const;

  // Addresses now cached; for tests.
  size_t cache_size() const;

 private:
  const size_t cache_capacity_;

  // Guards the databases, cache_ and names_. A standard mutex, not
  // absl::Mutex: see "ThreadSanitizer" in CMakeLists.txt.
  mutable std::mutex mu_;
  std::shared_ptr<const GeoIpDatabase> database_;
  std::shared_ptr<const AsnDatabase> asn_database_;
  // When full, the cache is emptied rather than evicting one entry: peers
  // repeat in bursts, so the hot set refills within one drain interval, and
  // this needs no recency bookkeeping on every hit.
  absl::flat_hash_map<IpAddress, Location> cache_;
  // AS names by number, first seen kept: bounded by the ASes the database
  // knows, and a name that changed under a label would split its series.
  absl::flat_hash_map<uint32_t, std::string> names_;

  // Atomics so that stats() never waits for a lookup.
  std::atomic<uint64_t> lookups_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> cache_misses_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace geoip

#endif  // EXPORTER_GEO_GEOLOCATOR_H_
