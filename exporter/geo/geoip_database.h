// A MaxMind DB (.mmdb) file opened for country lookups.
#ifndef EXPORTER_GEO_GEOIP_DATABASE_H_
#define EXPORTER_GEO_GEOIP_DATABASE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "exporter/geo/country.h"
#include "exporter/geo/mmdb_file.h"
#include "exporter/net/address.h"

namespace geoip {

// Sole owner of one memory-mapped MaxMind DB; closes it on destruction.
// Move-only. Lookup is const and safe to call from several threads at once.
// Reads both schemas in use: MaxMind/DB-IP (country.iso_code, falling back
// to registered_country.iso_code) and the flat ip-location-db one
// (country_code).
class GeoIpDatabase {
 public:
  // Opens path with MMDB_MODE_MMAP. NotFound (with a hint on how to get a
  // database) if it does not exist, PermissionDenied if it cannot be read,
  // InvalidArgument if it is not a valid MaxMind DB.
  // read_from: see MmdbFile::Open.
  static absl::StatusOr<GeoIpDatabase> Open(const std::string& path,
                                            const std::string& read_from = "");

  // The country of address; nullopt if the database has no record for it or
  // the record names no country. Errors mean the lookup itself failed: a
  // corrupt file, a record whose country is malformed, an IPv6 address in
  // an IPv4-only database, or a moved-from object.
  absl::StatusOr<std::optional<CountryId>> Lookup(const IpAddress& address) const;

  // The path the database was opened from.
  const std::string& path() const { return file_.path(); }
  // The metadata's database_type, e.g. "GeoLite2-Country".
  const std::string& type() const { return file_.type(); }
  // The metadata's build_epoch: when the database was built, in Unix seconds.
  uint64_t build_epoch() const { return file_.build_epoch(); }
  // build_epoch() if it is a date (see MmdbFile::build_time).
  std::optional<int64_t> build_time() const { return file_.build_time(); }

 private:
  explicit GeoIpDatabase(MmdbFile file) : file_(std::move(file)) {}

  MmdbFile file_;
};

// The first of candidates that exists as a regular file (after following
// symlinks), or nullopt. Used to pick a default --geoip.database.
std::optional<std::string> FindDefaultDatabase(const std::vector<std::string>& candidates);

}  // namespace geoip

#endif  // EXPORTER_GEO_GEOIP_DATABASE_H_
