#include "tools/load/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

int Family(const IpAddress& address) { return address.is_v4() ? AF_INET : AF_INET6; }

// A TCP socket for a connection to destination, bound to source (port
// left to connect()) when one is given, its blocking calls bounded by
// deadline unless that is absl::InfiniteFuture().
absl::StatusOr<UniqueFd> ClientSocket(const Endpoint& destination,
                                      const std::optional<IpAddress>& source, absl::Time deadline) {
  UniqueFd fd(socket(Family(destination.address), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket()");
  if (deadline != absl::InfiniteFuture()) {
    RETURN_IF_ERROR(BoundBlockingCalls(fd.get(), deadline - absl::Now()));
  }
  if (source) {
    int one = 1;
    setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    socklen_t length = 0;
    const sockaddr_storage address = ToSockaddr(Endpoint{*source, 0}, &length);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("bind(", FormatIpAddress(*source), ")"));
    }
  }
  return fd;
}

}  // namespace

absl::StatusOr<UniqueFd> Listen(const Endpoint& endpoint) {
  UniqueFd fd(socket(Family(endpoint.address), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket()");
  int one = 1;
  int zero = 0;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (!endpoint.address.is_v4() &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
    return absl::ErrnoToStatus(errno, "setsockopt(IPV6_V6ONLY)");
  }
  socklen_t length = 0;
  const sockaddr_storage address = ToSockaddr(endpoint, &length);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind(", endpoint.Text(), ")"));
  }
  if (listen(fd.get(), SOMAXCONN) != 0) return absl::ErrnoToStatus(errno, "listen()");
  return fd;
}

absl::StatusOr<uint32_t> AcceptQueueLength(int listener) {
  tcp_info info{};
  socklen_t length = sizeof(info);
  if (getsockopt(listener, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
    return absl::ErrnoToStatus(errno, "getsockopt(TCP_INFO)");
  }
  return info.tcpi_unacked;
}

absl::StatusOr<Endpoint> LocalEndpoint(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::ErrnoToStatus(errno, "getsockname()");
  }
  return FromSockaddr(address);
}

absl::Status BoundBlockingCalls(int fd, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("run timeout reached");
  }
  // A zero timeval would mean no bound at all.
  const timeval bound = absl::ToTimeval(std::max(timeout, absl::Milliseconds(1)));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound)) != 0) {
    return absl::ErrnoToStatus(errno, "setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> Connect(const Endpoint& destination,
                                 const std::optional<IpAddress>& source, absl::Time deadline) {
  ASSIGN_OR_RETURN(UniqueFd fd, ClientSocket(destination, source, deadline));
  socklen_t length = 0;
  const sockaddr_storage address = ToSockaddr(destination, &length);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    return absl::ErrnoToStatus(errno, "connect()");
  }
  return fd;
}

absl::StatusOr<Knock> KnockOnce(const Endpoint& destination, const std::optional<IpAddress>& source,
                                absl::Time deadline) {
  // Without a source address, the kernel may pick the destination's own
  // address and port for the client, and the socket connects to itself (TCP
  // simultaneous open) where nothing listens. Such an attempt is made again.
  constexpr int kTries = 3;
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(const UniqueFd fd, ClientSocket(destination, source, deadline));
    socklen_t length = 0;
    const sockaddr_storage address = ToSockaddr(destination, &length);
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
      if (errno == ECONNREFUSED) return Knock::kRefused;
      return absl::ErrnoToStatus(errno, absl::StrCat("connect(", destination.Text(), ")"));
    }
    ASSIGN_OR_RETURN(const Endpoint local, LocalEndpoint(fd.get()));
    if (!(local == destination) || attempt == kTries) return Knock::kOpen;
  }
}

void ResetOnClose(int fd) {
  const linger reset = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

}  // namespace geoip
