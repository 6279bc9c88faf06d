// A minimal blocking HTTP/1.0 GET client for tests that read /metrics and
// JSON from a server on loopback.
#ifndef TESTS_SUPPORT_HTTP_GET_H_
#define TESTS_SUPPORT_HTTP_GET_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace geoip {

// What the test client got back: the status code, headers (names
// lower-cased) and body. Not exporter/web's HttpResponse, which is what the
// server sends.
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};

// Sends "GET path HTTP/1.0" to host:port and reads the reply until the
// server closes. host must be a loopback literal (127.0.0.0/8 or ::1): tests
// send traffic nowhere else. Connect, send and receive together take at most
// timeout.
absl::StatusOr<HttpReply> HttpGet(absl::string_view host, uint16_t port, absl::string_view path,
                                  absl::Duration timeout);

// Sends request as given (request line, headers, body: e.g. with an
// Authorization header, or malformed on purpose) to host:port and reads
// the reply until the server closes; same rules as HttpGet.
absl::StatusOr<HttpReply> HttpExchange(absl::string_view host, uint16_t port,
                                       absl::string_view request, absl::Duration timeout);

}  // namespace geoip

#endif  // TESTS_SUPPORT_HTTP_GET_H_
