#include "exporter/geo/country.h"

#include "absl/strings/ascii.h"

namespace geoip {
namespace {

// The special values follow the 26 * 26 letter pairs.
constexpr uint16_t kPrivateValue = CountryId::kCountries;
constexpr uint16_t kUnknownValue = CountryId::kCountries + 1;
constexpr uint16_t kOverflowValue = CountryId::kCountries + 2;

}  // namespace

CountryId CountryId::Private() { return CountryId(kPrivateValue); }
CountryId CountryId::Unknown() { return CountryId(kUnknownValue); }
CountryId CountryId::Overflow() { return CountryId(kOverflowValue); }

std::optional<CountryId> CountryId::FromIsoCode(std::string_view code) {
  if (code.size() != 2) return std::nullopt;
  const char first = absl::ascii_toupper(static_cast<unsigned char>(code[0]));
  const char second = absl::ascii_toupper(static_cast<unsigned char>(code[1]));
  if (first < 'A' || first > 'Z' || second < 'A' || second > 'Z') {
    return std::nullopt;
  }
  return CountryId(static_cast<uint16_t>((first - 'A') * 26 + (second - 'A')));
}

std::string CountryId::Label() const {
  switch (value_) {
    case kPrivateValue:
      return "private";
    case kUnknownValue:
      return "unknown";
    case kOverflowValue:
      return "overflow";
    default:
      break;
  }
  return {static_cast<char>('A' + value_ / 26), static_cast<char>('A' + value_ % 26)};
}

}  // namespace geoip
