// Finds one IPv4 address per country in a GeoIP database, for benchmarks
// that need traffic from many countries.
#ifndef BENCH_COUNTRY_SAMPLER_H_
#define BENCH_COUNTRY_SAMPLER_H_

#include <cstddef>
#include <vector>

#include "exporter/geo/country.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/net/address.h"

namespace geoip {

struct CountryAddress {
  CountryId country;
  IpAddress address;
};

// Up to max_countries (country, address) pairs, each country once, sorted
// by country label. Walks the routable IPv4 space at every /20, then every
// /24 if that found fewer countries than wanted. Deterministic.
std::vector<CountryAddress> SampleCountries(const GeoIpDatabase& database, size_t max_countries);

}  // namespace geoip

#endif  // BENCH_COUNTRY_SAMPLER_H_
