// IP addresses as the probe reports them: classification, normalisation,
// text form and truncation for display.
#ifndef EXPORTER_NET_ADDRESS_H_
#define EXPORTER_NET_ADDRESS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace geoip {

// An IPv4 or IPv6 address. IPv4 uses bytes[0..3] (network order); the rest
// is zero, so equal addresses have equal bytes and hash alike.
struct IpAddress {
  enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

  Family family = Family::kV4;
  std::array<uint8_t, 16> bytes{};

  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);
  // Builds an address from the probe's raw form; af is 4 or 6. IPv4-mapped
  // IPv6 (::ffff:a.b.c.d) becomes IPv4.
  static IpAddress FromRaw(uint8_t af, const uint8_t raw[16]);

  bool is_v4() const { return family == Family::kV4; }

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.family == b.family && a.bytes == b.bytes;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.family, a.bytes);
  }
};

// Parses "192.0.2.1" or "2001:db8::1" (IPv4-mapped IPv6 is normalised to IPv4).
absl::StatusOr<IpAddress> ParseIpAddress(std::string_view text);

// The usual text form: dotted quad or RFC 5952 IPv6.
std::string FormatIpAddress(const IpAddress& address);

// True for addresses no geolocation database can place: loopback, RFC 1918,
// CGNAT, link-local, ULA, multicast, documentation, unspecified and the like.
bool IsNonRoutable(const IpAddress& address);

// The address with host bits cleared to /24 (IPv4) or /48 (IPv6), for
// showing where a client is from without showing who it is.
IpAddress TruncateForDisplay(const IpAddress& address);

// A block of addresses of one family, e.g. 192.0.2.0/24 or 2001:db8::/32.
struct IpNetwork {
  IpAddress base;
  int prefix_length = 0;

  // True if address is of the block's family and inside it.
  bool Contains(const IpAddress& address) const;
};

// Parses "ADDRESS/LENGTH", or a bare address (one address: /32 or /128).
// Host bits set past the length are refused: "10.0.0.1/8" is likely a typo.
absl::StatusOr<IpNetwork> ParseIpNetwork(std::string_view text);

}  // namespace geoip

#endif  // EXPORTER_NET_ADDRESS_H_
