#include "exporter/geo/geolocator.h"

#include <utility>

namespace geoip {

Geolocator::Geolocator(std::shared_ptr<const GeoIpDatabase> database, size_t cache_capacity)
    : cache_capacity_(cache_capacity), database_(std::move(database)) {}

Location Geolocator::Locate(const IpAddress& address) {
  lookups_.fetch_add(1);
  if (IsNonRoutable(address)) return {CountryId::Private(), NetworkId::Private()};

  // Held across the database lookup (microseconds) so that a SetDatabase in
  // between cannot leave an answer from the old database in the cache.
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = cache_.find(address); it != cache_.end()) {
    cache_hits_.fetch_add(1);
    return it->second;
  }
  cache_misses_.fetch_add(1);
  Location location{CountryId::Unknown(), NetworkId::Unknown()};
  bool failed = false;
  if (database_ != nullptr) {
    absl::StatusOr<std::optional<CountryId>> country = database_->Lookup(address);
    if (country.ok()) {
      location.country = country->value_or(CountryId::Unknown());
    } else {
      failed = true;
    }
  }
  if (asn_database_ != nullptr) {
    absl::StatusOr<std::optional<AsnRecord>> as = asn_database_->Lookup(address);
    if (!as.ok()) {
      failed = true;
    } else if (as->has_value()) {
      location.network = NetworkId::Of((*as)->number);
      names_.try_emplace((*as)->number, std::move((*as)->organization));
    }
  }
  // A failure is not cached: it is counted each time it happens.
  if (failed) {
    failures_.fetch_add(1);
    return location;
  }
  if (cache_capacity_ > 0) {
    if (cache_.size() >= cache_capacity_) cache_.clear();
    cache_.emplace(address, location);
  }
  return location;
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

void Geolocator::SetAsnDatabase(std::shared_ptr<const AsnDatabase> database) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    asn_database_.swap(database);
    cache_.clear();
  }
  database.reset();
}

std::shared_ptr<const GeoIpDatabase> Geolocator::database() const {
  std::lock_guard<std::mutex> lock(mu_);
  return database_;
}

std::shared_ptr<const AsnDatabase> Geolocator::asn_database() const {
  std::lock_guard<std::mutex> lock(mu_);
  return asn_database_;
}

std::string Geolocator::NetworkName(NetworkId network) const {
  if (!network.is_asn()) return "";
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = names_.find(network.asn());
  return it != names_.end() ? it->second : "";
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
