// Half-open handshakes for the end-to-end tests: bare SYNs sent through a
// raw socket, so no socket of this host waits for the SYN-ACK. Where the
// SYN-ACK goes nowhere (the source address belongs to no one who answers),
// the server's kernel sends it again and finally gives up: an incomplete
// handshake. IPv4 only. Needs CAP_NET_RAW.
#ifndef TOOLS_LOAD_HALF_OPEN_H_
#define TOOLS_LOAD_HALF_OPEN_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "exporter/net/address.h"

namespace geoip {

// The IPv4 and TCP headers of a SYN from source:source_port to
// destination:port, checksums included.
std::string SynPacket(const IpAddress& source, uint16_t source_port, const IpAddress& destination,
                      uint16_t port);

// Sends `count` SYNs from source to destination:port, each from its own
// source port (first_source_port, +1, ...).
absl::Status SendSyns(const IpAddress& source, const IpAddress& destination, uint16_t port,
                      uint64_t count, uint16_t first_source_port = 40000);

}  // namespace geoip

#endif  // TOOLS_LOAD_HALF_OPEN_H_
