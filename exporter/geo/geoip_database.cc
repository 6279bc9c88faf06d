#include "exporter/geo/geoip_database.h"

#include <sys/stat.h>

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

// Where each schema keeps the country, in the order they are tried: the
// MaxMind/DB-IP location, then its registrant (all GeoLite2 has for some
// anonymous proxies), then the flat ip-location-db field.
constexpr const char* kCountryIsoCode[] = {"country", "iso_code", nullptr};
constexpr const char* kRegisteredCountryIsoCode[] = {"registered_country", "iso_code", nullptr};
constexpr const char* kCountryCode[] = {"country_code", nullptr};
constexpr const char* const* kCountryPaths[] = {kCountryIsoCode, kRegisteredCountryIsoCode,
                                                kCountryCode};

// The country at path in record: nullopt if the record lacks a field on
// the path, an error if the path crosses a non-map or ends in anything but
// a two-letter code.
absl::StatusOr<std::optional<CountryId>> ReadCountry(const MMDB_entry_s& record,
                                                     const char* const* path,
                                                     const IpAddress& address) {
  ASSIGN_OR_RETURN(std::optional<MMDB_entry_data_s> data, ReadMmdbValue(record, path, address));
  if (!data) return std::nullopt;
  std::string name;
  for (const char* const* key = path; *key != nullptr; ++key) {
    absl::StrAppend(&name, name.empty() ? "" : ".", *key);
  }
  if (data->type != MMDB_DATA_TYPE_UTF8_STRING) {
    return absl::DataLossError(absl::StrCat(name, " for ", FormatIpAddress(address),
                                            " is not a string (MaxMind DB type ", data->type, ")"));
  }
  const std::string_view code(data->utf8_string, data->data_size);
  std::optional<CountryId> country = CountryId::FromIsoCode(code);
  if (!country) {
    return absl::DataLossError(absl::StrCat(name, " for ", FormatIpAddress(address), " is \"",
                                            std::string(code),
                                            "\", not a two-letter country code"));
  }
  return country;
}

}  // namespace

absl::StatusOr<GeoIpDatabase> GeoIpDatabase::Open(const std::string& path,
                                                  const std::string& read_from) {
  ASSIGN_OR_RETURN(MmdbFile file,
                   MmdbFile::Open(path, "GeoIP database", "--geoip.database", read_from));
  return GeoIpDatabase(std::move(file));
}

absl::StatusOr<std::optional<CountryId>> GeoIpDatabase::Lookup(const IpAddress& address) const {
  ASSIGN_OR_RETURN(std::optional<MMDB_entry_s> record, file_.Find(address));
  if (!record) return std::nullopt;
  for (const char* const* path : kCountryPaths) {
    ASSIGN_OR_RETURN(std::optional<CountryId> country, ReadCountry(*record, path, address));
    if (country) return country;
  }
  return std::nullopt;
}

std::optional<std::string> FindDefaultDatabase(const std::vector<std::string>& candidates) {
  for (const std::string& candidate : candidates) {
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace geoip
