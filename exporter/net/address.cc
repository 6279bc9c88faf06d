#include "exporter/net/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// A network in a special-purpose registry (RFC 6890 and successors).
struct Prefix {
  uint8_t bytes[16];
  int bits;
};

// IPv4 networks that are private, shared, loopback, link-local, reserved,
// documentation, benchmarking, multicast or broadcast.
constexpr Prefix kNonRoutableV4[] = {
    {{0, 0, 0, 0}, 8},      {{10, 0, 0, 0}, 8},    {{100, 64, 0, 0}, 10},   {{127, 0, 0, 0}, 8},
    {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12}, {{192, 0, 0, 0}, 24},    {{192, 0, 2, 0}, 24},
    {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15}, {{198, 51, 100, 0}, 24}, {{203, 0, 113, 0}, 24},
    {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},  // 240/4 holds 255.255.255.255.
};

// IPv6 unspecified, loopback, unique-local, link-local, multicast,
// documentation and discard-only networks. 64:ff9b::/96 (NAT64) is left
// routable: the embedded IPv4 address may well be public, and treating the
// synthesised address as unknown is more honest than guessing.
constexpr Prefix kNonRoutableV6[] = {
    {{}, 128},          {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
    {{0xfc}, 7},        {{0xfe, 0x80}, 10},
    {{0xff}, 8},        {{0x20, 0x01, 0x0d, 0xb8}, 32},
    {{0x01, 0x00}, 64},
};

bool InPrefix(const uint8_t* address, const Prefix& prefix) {
  const int whole = prefix.bits / 8;
  if (std::memcmp(address, prefix.bytes, whole) != 0) return false;
  const int rest = prefix.bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address[whole] & mask) == (prefix.bytes[whole] & mask);
}

// ::ffff:a.b.c.d, the form an IPv4 peer of a dual-stack socket takes.
bool IsV4Mapped(const uint8_t bytes[16]) {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes, kMappedPrefix, sizeof(kMappedPrefix)) == 0;
}

IpAddress V4FromBytes(const uint8_t bytes[4]) {
  IpAddress address;
  address.family = IpAddress::Family::kV4;
  std::memcpy(address.bytes.data(), bytes, 4);
  return address;
}

}  // namespace

IpAddress IpAddress::V4(uint32_t host_order) {
  const uint8_t bytes[4] = {
      static_cast<uint8_t>(host_order >> 24), static_cast<uint8_t>(host_order >> 16),
      static_cast<uint8_t>(host_order >> 8), static_cast<uint8_t>(host_order)};
  return V4FromBytes(bytes);
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  IpAddress address;
  address.family = Family::kV6;
  address.bytes = bytes;
  return address;
}

IpAddress IpAddress::FromRaw(uint8_t af, const uint8_t raw[16]) {
  if (af == 4) return V4FromBytes(raw);
  if (IsV4Mapped(raw)) return V4FromBytes(raw + 12);
  std::array<uint8_t, 16> bytes;
  std::memcpy(bytes.data(), raw, bytes.size());
  return V6(bytes);
}

absl::StatusOr<IpAddress> ParseIpAddress(std::string_view text) {
  // inet_pton needs a NUL-terminated string; an embedded NUL would let it
  // accept a prefix of the input.
  const std::string copy(text);
  if (copy.find('\0') == std::string::npos) {
    uint8_t bytes[16] = {};
    if (inet_pton(AF_INET, copy.c_str(), bytes) == 1) {
      return V4FromBytes(bytes);
    }
    if (inet_pton(AF_INET6, copy.c_str(), bytes) == 1) {
      return IpAddress::FromRaw(6, bytes);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("not an IPv4 or IPv6 address: \"", copy, "\""));
}

std::string FormatIpAddress(const IpAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  const int af = address.is_v4() ? AF_INET : AF_INET6;
  // Cannot fail: the family is valid and the buffer fits any address.
  inet_ntop(af, address.bytes.data(), text, sizeof(text));
  return text;
}

bool IsNonRoutable(const IpAddress& address) {
  const uint8_t* bytes = address.bytes.data();
  if (!address.is_v4()) {
    // Built with IpAddress::V6 rather than FromRaw, a mapped address can
    // still reach here; it is as routable as the IPv4 address inside it.
    if (IsV4Mapped(bytes)) return IsNonRoutable(V4FromBytes(bytes + 12));
    for (const Prefix& prefix : kNonRoutableV6) {
      if (InPrefix(bytes, prefix)) return true;
    }
    return false;
  }
  for (const Prefix& prefix : kNonRoutableV4) {
    if (InPrefix(bytes, prefix)) return true;
  }
  return false;
}

IpAddress TruncateForDisplay(const IpAddress& address) {
  IpAddress truncated = address;
  const size_t keep = address.is_v4() ? 3 : 6;  // /24 or /48
  std::fill(truncated.bytes.begin() + keep, truncated.bytes.end(), 0);
  return truncated;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.family != base.family) return false;
  Prefix prefix{{}, prefix_length};
  std::memcpy(prefix.bytes, base.bytes.data(), sizeof(prefix.bytes));
  return InPrefix(address.bytes.data(), prefix);
}

absl::StatusOr<IpNetwork> ParseIpNetwork(std::string_view text) {
  const size_t slash = text.find('/');
  absl::StatusOr<IpAddress> base = ParseIpAddress(text.substr(0, slash));
  if (!base.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an address block such as 192.0.2.0/24 or 2001:db8::/32: \"", std::string(text), "\""));
  }
  IpNetwork network{*base, base->is_v4() ? 32 : 128};
  if (slash == std::string_view::npos) return network;
  const std::string length(text.substr(slash + 1));
  int bits = -1;
  if (!absl::SimpleAtoi(length, &bits) || bits < 0 || bits > network.prefix_length ||
      length.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad prefix length in \"", std::string(text),
                                                   "\": expected 0 to ", network.prefix_length));
  }
  network.prefix_length = bits;
  IpNetwork cleared = network;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(bits - 8 * i, 0, 8);
    cleared.base.bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  if (cleared.base != network.base) {
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text),
                                                   "\" has host bits set: did you mean ",
                                                   FormatIpAddress(cleared.base), "/", bits, "?"));
  }
  return network;
}

}  // namespace geoip
