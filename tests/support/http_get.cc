#include "tests/support/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

// Bounds the next blocking call on fd by what is left until deadline.
absl::Status LimitNextCall(int fd, absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("HTTP GET timed out");
  timeval tv = absl::ToTimeval(std::max(left, absl::Milliseconds(1)));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return absl::ErrnoToStatus(errno, "setsockopt()");
  }
  return absl::OkStatus();
}

// A timed-out socket call fails with EAGAIN; report it as a deadline.
absl::Status SocketError(absl::string_view what) {
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS) {
    return absl::DeadlineExceededError(absl::StrCat(what, " timed out"));
  }
  return absl::ErrnoToStatus(errno, what);
}

absl::StatusOr<HttpReply> ParseReply(absl::string_view raw) {
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat("no end of headers in '", raw.substr(0, 80), "'"));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(raw.substr(0, head_end), "\r\n");
  // "HTTP/1.1 200 OK"
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpReply response;
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("bad status line '", lines[0], "'"));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("bad header '", lines[i], "'"));
    }
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = std::string(raw.substr(head_end + 4));
  auto length = response.headers.find("content-length");
  size_t expected = 0;
  if (length != response.headers.end() &&
      (!absl::SimpleAtoi(length->second, &expected) || expected != response.body.size())) {
    return absl::DataLossError(absl::StrCat("Content-Length ", length->second, " but ",
                                            response.body.size(), " body bytes"));
  }
  return response;
}

}  // namespace

absl::StatusOr<HttpReply> HttpGet(absl::string_view host, uint16_t port, absl::string_view path,
                                  absl::Duration timeout) {
  return HttpExchange(host, port,
                      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n"), timeout);
}

absl::StatusOr<HttpReply> HttpExchange(absl::string_view host, uint16_t port,
                                       absl::string_view request, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_storage address{};
  socklen_t length = 0;
  const std::string host_text(host);
  auto* sin = reinterpret_cast<sockaddr_in*>(&address);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host_text.c_str(), &sin->sin_addr) == 1 &&
      (ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    length = sizeof(*sin);
  } else if (inet_pton(AF_INET6, host_text.c_str(), &sin6->sin6_addr) == 1 &&
             IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    length = sizeof(*sin6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host, "' is not a loopback address literal"));
  }

  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket()");
  absl::Cleanup closer = [fd] { close(fd); };
  RETURN_IF_ERROR(LimitNextCall(fd, deadline));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    return SocketError(absl::StrCat("connect(", host, ":", port, ")"));
  }
  for (absl::string_view left = request; !left.empty();) {
    RETURN_IF_ERROR(LimitNextCall(fd, deadline));
    ssize_t sent = send(fd, left.data(), left.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0) return SocketError("send()");
    left.remove_prefix(static_cast<size_t>(sent));
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    RETURN_IF_ERROR(LimitNextCall(fd, deadline));
    ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received < 0) return SocketError("recv()");
    if (received == 0) break;
    raw.append(buffer, static_cast<size_t>(received));
  }
  return ParseReply(raw);
}

}  // namespace geoip
