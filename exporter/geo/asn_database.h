// A MaxMind DB (.mmdb) file opened for autonomous-system lookups.
#ifndef EXPORTER_GEO_ASN_DATABASE_H_
#define EXPORTER_GEO_ASN_DATABASE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "exporter/geo/mmdb_file.h"
#include "exporter/net/address.h"

namespace geoip {

// The autonomous system a database places an address in.
struct AsnRecord {
  uint32_t number;
  std::string organization;  // may be empty
};

// Sole owner of one memory-mapped MaxMind DB; move-only; Lookup is const and
// safe to call from several threads at once. Reads the schemas in use:
// MaxMind GeoLite2-ASN, DB-IP ASN lite and the bundled ip-location-db one
// (autonomous_system_number, autonomous_system_organization), and ipinfo's
// (asn as "AS15169", with as_name or name).
class AsnDatabase {
 public:
  // Opens path; errors as for GeoIpDatabase::Open, naming --geoip.asn-database.
  // read_from: see MmdbFile::Open.
  static absl::StatusOr<AsnDatabase> Open(const std::string& path,
                                          const std::string& read_from = "");

  // The AS of address; nullopt if the database has no record for it or the
  // record names no AS. Errors mean the lookup failed: a corrupt file, a
  // malformed number, an IPv6 address in an IPv4-only database.
  absl::StatusOr<std::optional<AsnRecord>> Lookup(const IpAddress& address) const;

  const std::string& path() const { return file_.path(); }
  // The metadata's database_type, e.g. "GeoLite2-ASN".
  const std::string& type() const { return file_.type(); }
  // When the database was built, in Unix seconds.
  uint64_t build_epoch() const { return file_.build_epoch(); }
  // build_epoch() if it is a date (see MmdbFile::build_time).
  std::optional<int64_t> build_time() const { return file_.build_time(); }

 private:
  explicit AsnDatabase(MmdbFile file) : file_(std::move(file)) {}

  MmdbFile file_;
};

}  // namespace geoip

#endif  // EXPORTER_GEO_ASN_DATABASE_H_
