#include "tools/load/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "exporter/util/status_macros.h"

namespace geoip {

bool Endpoint::IsUnspecified() const {
  return std::all_of(address.bytes.begin(), address.bytes.end(),
                     [](uint8_t byte) { return byte == 0; });
}

std::string Endpoint::Text() const {
  return address.is_v4() ? absl::StrCat(FormatIpAddress(address), ":", port)
                         : absl::StrCat("[", FormatIpAddress(address), "]:", port);
}

absl::StatusOr<IpAddress> ParseSocketAddress(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) {
    return absl::InvalidArgumentError(absl::StrCat("missing ']' in '[", text, "'"));
  }
  ASSIGN_OR_RETURN(IpAddress address, ParseIpAddress(std::string_view(text.data(), text.size())));
  if (address.is_v4() && absl::StrContains(text, ':')) {
    // ParseIpAddress made ::ffff:a.b.c.d IPv4; put it back as written.
    std::array<uint8_t, 16> mapped{};
    mapped[10] = mapped[11] = 0xff;
    std::copy_n(address.bytes.begin(), 4, mapped.begin() + 12);
    return IpAddress::V6(mapped);
  }
  return address;
}

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("missing port in '", text, "'"));
  }
  const absl::string_view host = text.substr(0, colon);
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::InvalidArgumentError(
        absl::StrCat("IPv6 needs brackets, as in [::1]:80: '", text, "'"));
  }
  Endpoint endpoint;
  ASSIGN_OR_RETURN(endpoint.address, ParseSocketAddress(host));
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", text, "'"));
  }
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

sockaddr_storage ToSockaddr(const Endpoint& endpoint, socklen_t* length) {
  sockaddr_storage storage{};
  if (endpoint.address.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(endpoint.port);
    std::memcpy(&sin->sin_addr, endpoint.address.bytes.data(), 4);
    *length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(endpoint.port);
    std::memcpy(&sin6->sin6_addr, endpoint.address.bytes.data(), 16);
    *length = sizeof(sockaddr_in6);
  }
  return storage;
}

Endpoint FromSockaddr(const sockaddr_storage& storage) {
  Endpoint endpoint;
  if (storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    endpoint.address = IpAddress::V4(ntohl(sin->sin_addr.s_addr));
    endpoint.port = ntohs(sin->sin_port);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &sin6->sin6_addr, bytes.size());
    // V6, not FromRaw: the mapped form is what the socket saw.
    endpoint.address = IpAddress::V6(bytes);
    endpoint.port = ntohs(sin6->sin6_port);
  }
  return endpoint;
}

}  // namespace geoip
