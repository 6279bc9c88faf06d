// A small HTTP server on civetweb: exact-path routes, plain and streaming
// handlers, the limits an exporter needs, and clear errors at start-up.
#ifndef EXPORTER_WEB_HTTP_SERVER_H_
#define EXPORTER_WEB_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct mg_context;
struct mg_connection;

namespace geoip {

class TlsContext;

// One request, as the handler sees it.
struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;  // without the '?'
  std::string remote_address;
  bool from_loopback = false;
  std::string body;
  absl::flat_hash_map<std::string, std::string> headers;  // lower-case names
};

// A complete response.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A response sent in pieces, such as Server-Sent Events.
class HttpStream {
 public:
  // Sends data; false once the client has gone.
  virtual bool Write(absl::string_view data) = 0;

 protected:
  ~HttpStream() = default;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
using HttpStreamHandler = std::function<void(const HttpRequest&, HttpStream&)>;

// A handler for one exact path. Exactly one of handler and stream is set.
struct HttpRoute {
  std::string path;
  HttpHandler handler;
  HttpStreamHandler stream;
  std::string stream_content_type = "text/event-stream";
};

// True when this civetweb is built with IPv6 and this host has IPv6 on.
bool CanServeIpv6();

// OK when civetweb can serve TLS here: built with it, and loading this
// exporter's libssl.so (web/civetweb_tls/); else an error that says what to
// do instead.
absl::Status CanServeTls();

// Turns Prometheus-style listen addresses (":19100", "127.0.0.1:19100",
// "[::1]:19100", "localhost:0") into civetweb's form; rejects what this
// civetweb or host cannot do. ":PORT" is every interface, IPv4 and IPv6
// where the host has IPv6 (civetweb's "+PORT"); "0.0.0.0:PORT" is IPv4 only.
absl::StatusOr<std::string> ToCivetwebListen(absl::string_view listen_address);

// The URL a browser on this host opens to reach a server that listens on
// `listen_address` and got `port` (the real one, also for port 0):
// http://localhost:PORT/ when it listens on every interface; https with tls.
std::string BrowserUrl(absl::string_view listen_address, int port, bool tls = false);

// Binds and releases the address, so start-up can fail on a port in use
// before it loads anything into the kernel.
absl::Status CheckCanListen(absl::string_view listen_address);

class HttpServer {
 public:
  struct Options {
    std::string listen_address = ":19100";
    // Connections served at once: civetweb gives each one a thread, and a
    // client that stalls holds its thread until request_timeout. Enough
    // for Prometheus, a few live pages and some stalled clients.
    int threads = 64;
    // Longest a client may take to send its request line and headers (and
    // to accept each write); then the connection is closed.
    absl::Duration request_timeout = absl::Seconds(10);
    // An idle keep-alive connection is closed after this. Short, because
    // it holds a thread while it waits.
    absl::Duration keep_alive_timeout = absl::Seconds(5);
    // Request line plus headers; a larger request is refused.
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 64 * 1024;
    // When set, a request for any path but open_paths (unknown paths
    // included) must satisfy it, or gets 401 with a Basic challenge.
    std::function<bool(const HttpRequest&)> authorize;
    absl::flat_hash_set<std::string> open_paths = {"/-/healthy"};
    std::string realm = "ebpf_geoip_exporter";
    // Sent with every response, e.g. from http_server_config.headers.
    std::vector<std::pair<std::string, std::string>> response_headers;
    // When set, the server speaks only HTTPS, with this context's settings.
    std::shared_ptr<const TlsContext> tls;
  };

  // Starts serving `routes`; unknown paths get 404. Fails with a message
  // that names the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const Options& options,
                                                           std::vector<HttpRoute> routes);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // Stops accepting and waits for handlers to return.
  ~HttpServer();

  // The port actually listened on (useful with port 0).
  int port() const { return port_; }

  // Handles one civetweb request; public for the C callback only.
  int Dispatch(struct mg_connection* connection);

  // Sets up civetweb's OpenSSL context from options.tls; public for the C
  // callback only.
  bool ConfigureTls(void* ssl_ctx);

 private:
  HttpServer(const Options& options, std::vector<HttpRoute> routes);

  Options options_;
  absl::flat_hash_map<std::string, HttpRoute> routes_;
  struct mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace geoip

#endif  // EXPORTER_WEB_HTTP_SERVER_H_
