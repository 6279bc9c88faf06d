// A country label in two bytes: an ISO 3166-1 alpha-2 code or one of the
// special values the exporter uses when no country applies.
#ifndef EXPORTER_GEO_COUNTRY_H_
#define EXPORTER_GEO_COUNTRY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace geoip {

class CountryId {
 public:
  // Special labels. kPrivate: non-routable peer. kUnknown: the database has
  // no country for it. kOverflow: the kernel could not record the peer
  // address (its map was full), so the country cannot be known.
  static CountryId Private();
  static CountryId Unknown();
  static CountryId Overflow();

  // Accepts two ASCII letters in any case; anything else is nullopt.
  static std::optional<CountryId> FromIsoCode(std::string_view code);

  // "US", "private", "unknown" or "overflow".
  std::string Label() const;
  bool is_country() const { return value_ < kCountries; }
  // Dense index in [0, kCount), usable as an array index.
  uint16_t index() const { return value_; }
  static CountryId FromIndex(uint16_t index) { return CountryId(index); }

  static constexpr uint16_t kCountries = 26 * 26;
  static constexpr uint16_t kCount = kCountries + 3;

  friend bool operator==(CountryId a, CountryId b) { return a.value_ == b.value_; }
  friend bool operator!=(CountryId a, CountryId b) { return a.value_ != b.value_; }
  friend bool operator<(CountryId a, CountryId b) { return a.value_ < b.value_; }
  template <typename H>
  friend H AbslHashValue(H h, CountryId c) {
    return H::combine(std::move(h), c.value_);
  }

 private:
  explicit CountryId(uint16_t value) : value_(value) {}
  uint16_t value_;
};

}  // namespace geoip

#endif  // EXPORTER_GEO_COUNTRY_H_
