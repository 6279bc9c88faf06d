#include "exporter/geo/asn_database.h"

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "exporter/geo/network.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

constexpr const char* kNumber[] = {"autonomous_system_number", nullptr};
constexpr const char* kOrganization[] = {"autonomous_system_organization", nullptr};
constexpr const char* kIpinfoAsn[] = {"asn", nullptr};
constexpr const char* kIpinfoAsName[] = {"as_name", nullptr};
constexpr const char* kIpinfoName[] = {"name", nullptr};

absl::Status Malformed(const char* field, const IpAddress& address, const std::string& what) {
  return absl::DataLossError(absl::StrCat(field, " for ", FormatIpAddress(address), " is ", what));
}

// The number at kNumber (an integer of any width) or kIpinfoAsn ("AS123");
// nullopt if the record has neither.
absl::StatusOr<std::optional<uint32_t>> ReadNumber(const MMDB_entry_s& record,
                                                   const IpAddress& address) {
  ASSIGN_OR_RETURN(std::optional<MMDB_entry_data_s> number,
                   ReadMmdbValue(record, kNumber, address));
  if (number) {
    switch (number->type) {
      case MMDB_DATA_TYPE_UINT16:
        return number->uint16;
      case MMDB_DATA_TYPE_UINT32:
        return number->uint32;
      case MMDB_DATA_TYPE_INT32:
        if (number->int32 >= 0) return static_cast<uint32_t>(number->int32);
        break;
      case MMDB_DATA_TYPE_UINT64:
        if (number->uint64 <= UINT32_MAX) return static_cast<uint32_t>(number->uint64);
        break;
      default:
        break;
    }
    return Malformed(kNumber[0], address,
                     absl::StrCat("not a 32-bit AS number (MaxMind DB type ", number->type, ")"));
  }
  ASSIGN_OR_RETURN(std::optional<MMDB_entry_data_s> text,
                   ReadMmdbValue(record, kIpinfoAsn, address));
  if (!text) return std::nullopt;
  if (text->type == MMDB_DATA_TYPE_UTF8_STRING) {
    const std::string_view label(text->utf8_string, text->data_size);
    if (std::optional<NetworkId> network = NetworkId::FromLabel(label);
        network && network->is_asn()) {
      return network->asn();
    }
    return Malformed(kIpinfoAsn[0], address, "\"" + std::string(label) + "\", not ASnnn");
  }
  return Malformed(kIpinfoAsn[0], address,
                   absl::StrCat("not a string (MaxMind DB type ", text->type, ")"));
}

// The organisation's name at the first of paths that has a string; empty if
// none does (a name is nice to have, never worth failing a lookup for).
std::string ReadName(const MMDB_entry_s& record, const IpAddress& address) {
  for (const char* const* path : {kOrganization, kIpinfoAsName, kIpinfoName}) {
    absl::StatusOr<std::optional<MMDB_entry_data_s>> data = ReadMmdbValue(record, path, address);
    if (data.ok() && data->has_value() && (*data)->type == MMDB_DATA_TYPE_UTF8_STRING) {
      return std::string((*data)->utf8_string, (*data)->data_size);
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<AsnDatabase> AsnDatabase::Open(const std::string& path,
                                              const std::string& read_from) {
  ASSIGN_OR_RETURN(MmdbFile file,
                   MmdbFile::Open(path, "ASN database", "--geoip.asn-database", read_from));
  return AsnDatabase(std::move(file));
}

absl::StatusOr<std::optional<AsnRecord>> AsnDatabase::Lookup(const IpAddress& address) const {
  ASSIGN_OR_RETURN(std::optional<MMDB_entry_s> record, file_.Find(address));
  if (!record) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<uint32_t> number, ReadNumber(*record, address));
  if (!number) return std::nullopt;
  return AsnRecord{*number, ReadName(*record, address)};
}

}  // namespace geoip
