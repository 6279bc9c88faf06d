// English country names for the live map and the JSON API, generated at
// build time from Debian's iso-codes (geoip_country_names in
// embed_files.cmake).
#ifndef EXPORTER_WEB_COUNTRY_NAMES_H_
#define EXPORTER_WEB_COUNTRY_NAMES_H_

#include <string>

#include "exporter/geo/country.h"

namespace geoip {

// The ISO 3166-1 short name ("Germany"; the common name where iso-codes
// has one, "Bolivia"), a description for the special labels ("Private
// network"), or the code itself for a code iso-codes does not know.
std::string CountryName(CountryId country);

}  // namespace geoip

#endif  // EXPORTER_WEB_COUNTRY_NAMES_H_
