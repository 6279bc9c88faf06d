// A network label in eight bytes: an autonomous system number, or one of
// the special values the exporter uses when no AS applies.
#ifndef EXPORTER_GEO_NETWORK_H_
#define EXPORTER_GEO_NETWORK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace geoip {

class NetworkId {
 public:
  // AS numbers are 32 bits; the special values lie above them.
  static NetworkId Of(uint32_t asn) { return NetworkId(asn); }
  // Like CountryId's: a non-routable peer, no AS in the database, the
  // kernel kept no address, and (for capped labels) every network past the
  // cap.
  static NetworkId Private() { return NetworkId(kSpecial + 0); }
  static NetworkId Unknown() { return NetworkId(kSpecial + 1); }
  static NetworkId Overflow() { return NetworkId(kSpecial + 2); }
  static NetworkId Other() { return NetworkId(kSpecial + 3); }

  // "AS3333" (any case) or a special label; anything else is nullopt.
  static std::optional<NetworkId> FromLabel(std::string_view label);

  // "AS3333", "private", "unknown", "overflow" or "other".
  std::string Label() const;
  bool is_asn() const { return value_ < kSpecial; }
  // The AS number; meaningful only if is_asn().
  uint32_t asn() const { return static_cast<uint32_t>(value_); }

  friend bool operator==(NetworkId a, NetworkId b) { return a.value_ == b.value_; }
  friend bool operator!=(NetworkId a, NetworkId b) { return a.value_ != b.value_; }
  friend bool operator<(NetworkId a, NetworkId b) { return a.value_ < b.value_; }
  template <typename H>
  friend H AbslHashValue(H h, NetworkId n) {
    return H::combine(std::move(h), n.value_);
  }

 private:
  static constexpr uint64_t kSpecial = uint64_t{1} << 32;
  explicit NetworkId(uint64_t value) : value_(value) {}
  uint64_t value_;
};

}  // namespace geoip

#endif  // EXPORTER_GEO_NETWORK_H_
