#include "bench/country_sampler.h"

#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_map.h"

namespace geoip {

std::vector<CountryAddress> SampleCountries(const GeoIpDatabase& database, size_t max_countries) {
  absl::flat_hash_map<CountryId, IpAddress> found;
  // Coarse first: most countries hold whole /20s; small ones need /24s.
  for (const int step_bits : {12, 8}) {
    for (uint64_t host = uint64_t{1} << 24; host < (uint64_t{224} << 24);
         host += uint64_t{1} << step_bits) {
      if (found.size() >= max_countries) break;
      const IpAddress address = IpAddress::V4(static_cast<uint32_t>(host) + 1);
      if (IsNonRoutable(address)) continue;
      absl::StatusOr<std::optional<CountryId>> country = database.Lookup(address);
      if (!country.ok() || !country->has_value()) continue;
      found.try_emplace(**country, address);
    }
    if (found.size() >= max_countries) break;
  }
  std::vector<CountryAddress> result;
  for (const auto& [country, address] : found) result.push_back({country, address});
  std::sort(result.begin(), result.end(), [](const CountryAddress& a, const CountryAddress& b) {
    return a.country.Label() < b.country.Label();
  });
  return result;
}

}  // namespace geoip
