// Maps peer addresses to country labels: classification of non-routable
// addresses, a lookup cache, and the (replaceable) GeoIP database.
#ifndef EXPORTER_GEO_GEOLOCATOR_H_
#define EXPORTER_GEO_GEOLOCATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "exporter/geo/country.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/net/address.h"

namespace geoip {

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

  // Private for non-routable addresses, else the database's country, else
  // Unknown (no country, or a failed lookup, which is counted).
  CountryId Locate(const IpAddress& address);

  // Replaces the database (hot reload) and empties the cache, whose answers
  // came from the old one.
  void SetDatabase(std::shared_ptr<const GeoIpDatabase> database);

  // The database in use, for reporting its metadata.
  std::shared_ptr<const GeoIpDatabase> database() const;

  // A snapshot of the totals; never waits for a lookup.
  Stats stats() const;

  // Addresses now cached; for tests.
  size_t cache_size() const;

 private:
  const size_t cache_capacity_;

  // Guards database_ and cache_. A standard mutex, not absl::Mutex: see
  // "ThreadSanitizer" in CMakeLists.txt.
  mutable std::mutex mu_;
  std::shared_ptr<const GeoIpDatabase> database_;
  // When full, the cache is emptied rather than evicting one entry: peers
  // repeat in bursts, so the hot set refills within one drain interval, and
  // this needs no recency bookkeeping on every hit.
  absl::flat_hash_map<IpAddress, CountryId> cache_;

  // Atomics so that stats() never waits for a lookup.
  std::atomic<uint64_t> lookups_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> cache_misses_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace geoip

#endif  // EXPORTER_GEO_GEOLOCATOR_H_
