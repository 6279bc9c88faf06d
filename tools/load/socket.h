// The sockets of the load tools: a listener, and a client connection from a
// chosen source address. Every fd returned is owned by a UniqueFd.
#ifndef TOOLS_LOAD_SOCKET_H_
#define TOOLS_LOAD_SOCKET_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"
#include "exporter/util/unique_fd.h"
#include "tools/load/endpoint.h"

namespace geoip {

// A socket listening on endpoint (SO_REUSEADDR, backlog SOMAXCONN). IPv6
// listeners are dual-stack (IPV6_V6ONLY=0), so [::] also accepts IPv4.
absl::StatusOr<UniqueFd> Listen(const Endpoint& endpoint);

// Connections waiting in listener's accept queue (TCP_INFO's tcpi_unacked
// on a listening socket).
absl::StatusOr<uint32_t> AcceptQueueLength(int listener);

// The address and port fd is bound to: the real port of a listener on 0.
absl::StatusOr<Endpoint> LocalEndpoint(int fd);

// Bounds every blocking call on fd (connect, send, recv, accept) by
// timeout; DeadlineExceeded if timeout is not positive.
absl::Status BoundBlockingCalls(int fd, absl::Duration timeout);

// A TCP connection to destination. With a source it binds there first,
// leaving the port to connect() (IP_BIND_ADDRESS_NO_PORT), so each of many
// source addresses gets the whole port range for each destination. Every
// blocking call on it is bounded by deadline; absl::InfiniteFuture() sets
// no bound and costs no system call.
absl::StatusOr<UniqueFd> Connect(const Endpoint& destination,
                                 const std::optional<IpAddress>& source, absl::Time deadline);

// What a connection attempt found at its destination.
enum class Knock {
  kRefused,  // a reset answered the SYN: nothing listens there (ECONNREFUSED)
  kOpen,     // the connection was made (and is closed again with a FIN)
};

// One connection attempt from source (as Connect() binds it) to
// destination: refused, or open. Any other failure (a bind, a timeout) is
// an error. Bounded by deadline like Connect(). A socket that connected to
// itself (no source given, and the kernel chose the destination as its own
// address and port) is not a listener: that attempt is made again.
absl::StatusOr<Knock> KnockOnce(const Endpoint& destination, const std::optional<IpAddress>& source,
                                absl::Time deadline);

// Makes close(fd) send an RST instead of a FIN (SO_LINGER {1, 0}): no
// TIME_WAIT is left behind, so a storm does not run out of ports.
void ResetOnClose(int fd);

}  // namespace geoip

#endif  // TOOLS_LOAD_SOCKET_H_
