#include "exporter/geo/geolocator.h"

#include <utility>

namespace geoip {

Geolocator::Geolocator(std::shared_ptr<const GeoIpDatabase> database, size_t cache_capacity)
    : cache_capacity_(cache_capacity), database_(std::move(database)) {}

CountryId Geolocator::Locate(const IpAddress& address) {
  lookups_.fetch_add(1);
  if (IsNonRoutable(address)) return CountryId::Private();

  // Held across the database lookup (microseconds) so that a SetDatabase in
  // between cannot leave an answer from the old database in the cache.
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = cache_.find(address); it != cache_.end()) {
    cache_hits_.fetch_add(1);
    return it->second;
  }
  cache_misses_.fetch_add(1);
  if (database_ == nullptr) return CountryId::Unknown();

  absl::StatusOr<std::optional<CountryId>> found = database_->Lookup(address);
  if (!found.ok()) {
    // Not cached: the failure is counted each time it happens.
    failures_.fetch_add(1);
    return CountryId::Unknown();
  }
  const CountryId country = found->value_or(CountryId::Unknown());
  if (cache_capacity_ > 0) {
    if (cache_.size() >= cache_capacity_) cache_.clear();
    cache_.emplace(address, country);
  }
  return country;
}

void Geolocator::SetDatabase(std::shared_ptr<const GeoIpDatabase> database) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    database_.swap(database);
    cache_.clear();
  }
  // The old database, if this was its last user, is closed here, outside
  // the lock.
  database.reset();
}

std::shared_ptr<const GeoIpDatabase> Geolocator::database() const {
  std::lock_guard<std::mutex> lock(mu_);
  return database_;
}

Geolocator::Stats Geolocator::stats() const {
  // Read in the reverse of the order Locate bumps them, so that a snapshot
  // taken mid-lookup still has failures <= misses and hits + misses <=
  // lookups.
  Stats stats;
  stats.failures = failures_.load();
  stats.cache_misses = cache_misses_.load();
  stats.cache_hits = cache_hits_.load();
  stats.lookups = lookups_.load();
  return stats;
}

size_t Geolocator::cache_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

}  // namespace geoip
