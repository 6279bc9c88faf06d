#include "exporter/geo/network.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

constexpr std::string_view kSpecialLabels[] = {"private", "unknown", "overflow", "other"};

}  // namespace

std::optional<NetworkId> NetworkId::FromLabel(std::string_view label) {
  for (size_t i = 0; i < std::size(kSpecialLabels); ++i) {
    if (label == kSpecialLabels[i]) return NetworkId(kSpecial + i);
  }
  if (label.size() < 3 || label.size() > 12 || absl::ascii_tolower(label[0]) != 'a' ||
      absl::ascii_tolower(label[1]) != 's') {
    return std::nullopt;
  }
  uint64_t asn = 0;
  for (char c : label.substr(2)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    asn = asn * 10 + static_cast<uint64_t>(c - '0');
  }
  if (asn > UINT32_MAX) return std::nullopt;
  return NetworkId(asn);
}

std::string NetworkId::Label() const {
  if (is_asn()) return absl::StrCat("AS", value_);
  const uint64_t special = value_ - kSpecial;
  return std::string(special < std::size(kSpecialLabels) ? kSpecialLabels[special] : "other");
}

}  // namespace geoip
