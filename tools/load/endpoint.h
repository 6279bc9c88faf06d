// Where load goes: an IP address and a TCP port, their text form on the
// load tools' command lines, and the sockaddr the kernel wants. Pure
// functions; the sockets themselves are in tools/load/socket.h.
#ifndef TOOLS_LOAD_ENDPOINT_H_
#define TOOLS_LOAD_ENDPOINT_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "exporter/net/address.h"

namespace geoip {

// An address and a port (0: any free one, for a listener).
struct Endpoint {
  IpAddress address;
  uint16_t port = 0;

  // True for 0.0.0.0 and ::, which listen on every address of the family.
  bool IsUnspecified() const;
  // "192.0.2.1:80" or "[2001:db8::1]:80".
  std::string Text() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.address == b.address && a.port == b.port;
  }
};

// "192.0.2.1", "2001:db8::1" or "[2001:db8::1]". Unlike ParseIpAddress,
// the family is the one the text is written in: "::ffff:192.0.2.1" stays
// IPv6, since it names what an IPv6 socket binds or connects to.
absl::StatusOr<IpAddress> ParseSocketAddress(absl::string_view text);

// "192.0.2.1:80" or "[2001:db8::1]:80", port 1 to 65535.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text);

// The sockaddr_in or sockaddr_in6 of endpoint; *length is its size.
sockaddr_storage ToSockaddr(const Endpoint& endpoint, socklen_t* length);

// The endpoint in a sockaddr the kernel filled in (accept, getsockname). An
// IPv4 peer of a dual-stack IPv6 listener stays ::ffff:a.b.c.d, as the
// kernel reports it.
Endpoint FromSockaddr(const sockaddr_storage& storage);

}  // namespace geoip

#endif  // TOOLS_LOAD_ENDPOINT_H_
