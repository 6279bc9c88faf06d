#include "exporter/web/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "exporter/web/tls_context.h"

namespace geoip {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
  }
  return "Status";
}

bool IsLoopback(const char* address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, address, &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

// An IPv4 client of a dual-stack socket as IPv4 ("::ffff:192.0.2.1" is
// "192.0.2.1"), so that address rules and logs see one form.
std::string WithoutV4Mapping(const char* address) {
  in6_addr v6{};
  char text[INET_ADDRSTRLEN];
  if (inet_pton(AF_INET6, address, &v6) == 1 && IN6_IS_ADDR_V4MAPPED(&v6) &&
      inet_ntop(AF_INET, &v6.s6_addr[12], text, sizeof(text)) != nullptr) {
    return text;
  }
  return address;
}

void SendResponse(struct mg_connection* connection, const HttpResponse& response,
                  const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string head = absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
      response.status, ReasonPhrase(response.status), response.content_type, response.body.size());
  if (response.status >= 400) {
    // An error may leave an unread body (or unparsed headers) behind: never
    // read the rest of this connection as a next request, and never wait
    // for a body that will not be used.
    mg_disable_connection_keep_alive(connection);
    head += "Connection: close\r\n";
  }
  for (const auto& [name, value] : response.headers) {
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  for (const auto& [name, value] : extra_headers) {
    absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  head += "\r\n";
  mg_write(connection, head.data(), head.size());
  mg_write(connection, response.body.data(), response.body.size());
}

class CivetwebStream : public HttpStream {
 public:
  explicit CivetwebStream(struct mg_connection* connection) : connection_(connection) {}
  bool Write(absl::string_view data) override {
    return mg_write(connection_, data.data(), data.size()) > 0;
  }

 private:
  struct mg_connection* connection_;
};

// civetweb's init_ssl: the server's TlsContext sets up the whole context.
int InitTls(void* ssl_ctx, void* server) {
  return static_cast<HttpServer*>(server)->ConfigureTls(ssl_ctx) ? 1 : -1;
}

int HandleRequest(struct mg_connection* connection, void* server) {
  return static_cast<HttpServer*>(server)->Dispatch(connection);
}

// civetweb reports bind failures only through its log; keep the last one
// of start-up so the error can say why.
std::mutex start_log_mutex;
std::string* start_log = nullptr;

int LogMessage(const struct mg_connection*, const char* message) {
  std::lock_guard<std::mutex> lock(start_log_mutex);
  // The first message names the cause; later ones only say start-up failed.
  if (start_log && start_log->empty()) *start_log = message;
  return 1;  // handled: keep civetweb from printing to stderr
}

}  // namespace

bool CanServeIpv6() {
  if (mg_check_feature(MG_FEATURES_IPV6) == 0) return false;
  // A kernel booted with ipv6.disable=1 has no IPv6 sockets at all.
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  close(fd);
  return true;
}

absl::Status CanServeTls() {
  if (mg_check_feature(MG_FEATURES_TLS) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tls_server_config: this exporter's civetweb (", mg_version(),
                     ") is built without TLS: leave tls_server_config out and terminate TLS in "
                     "front of the exporter (deploy/tls/)"));
  }
  // civetweb opens "libssl.so" itself and calls SSL_get_peer_certificate
  // after every handshake: without the exporter's own libssl.so
  // (civetweb_tls/libssl_shim.c) that name is missing, or is OpenSSL 3's,
  // which has no such function, and the first client crashes the server.
  // dlopen from here searches the same DT_RPATH civetweb's does.
  void* libssl = dlopen("libssl.so", RTLD_LAZY);
  if (libssl == nullptr || dlsym(libssl, "SSL_get_peer_certificate") == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tls_server_config: civetweb would load ",
        libssl == nullptr ? "no libssl.so" : "an OpenSSL without SSL_get_peer_certificate",
        ", and this binary has no libssl.so of its own next to it: run the exporter from the "
        "Debian package or the build directory (its RPATH names the directory with that "
        "library), or terminate TLS in front of the exporter (deploy/tls/)"));
  }
  return absl::OkStatus();  // the handle stays open, as civetweb's will
}

absl::StatusOr<std::string> ToCivetwebListen(absl::string_view listen_address) {
  const size_t colon = listen_address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address,
                     "\" has no port: use HOST:PORT or :PORT, e.g. :19100, 127.0.0.1:19100 "
                     "or [::1]:19100"));
  }
  absl::string_view host = listen_address.substr(0, colon);
  absl::string_view port_text = listen_address.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535 || port_text.empty() ||
      !absl::ascii_isdigit(port_text[0])) {
    return absl::InvalidArgumentError(absl::StrCat("listen address \"", listen_address,
                                                   "\" has a bad port \"", port_text,
                                                   "\": use a number from 0 to 65535"));
  }
  // Every interface: both IPv4 and IPv6 where this host and civetweb can,
  // as Prometheus' exporters do.
  if (host.empty()) return CanServeIpv6() ? absl::StrCat("+", port) : absl::StrCat(port);
  if (host == "0.0.0.0") return absl::StrCat(port);
  if (host == "localhost") host = "127.0.0.1";
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    const std::string address(host.substr(1, host.size() - 2));
    in6_addr v6{};
    if (inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen address \"", listen_address,
                       "\" must name an IPv6 address in brackets, e.g. [::1]:19100 or [::]:19100"));
    }
    if (!CanServeIpv6()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address \"", listen_address, "\" is IPv6, and ",
          mg_check_feature(MG_FEATURES_IPV6) == 0
              ? absl::StrCat("this exporter's civetweb (", mg_version(),
                             ", Debian 12's) is built without IPv6: run it on Debian 13, or")
              : "this host has IPv6 turned off:",
          " listen on an IPv4 address such as :PORT or 127.0.0.1:PORT"));
    }
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &v6, text, sizeof(text));
    return absl::StrCat("[", text, "]:", port);
  }
  in_addr v4{};
  const std::string host_string(host);
  if (inet_pton(AF_INET, host_string.c_str(), &v4) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen_address,
                     "\" must name an IP address (or localhost), e.g. 127.0.0.1:19100, "
                     "[::1]:19100 or :19100"));
  }
  return absl::StrCat(host_string, ":", port);
}

std::string BrowserUrl(absl::string_view listen_address, int port, bool tls) {
  std::string host = "localhost";
  if (absl::StatusOr<std::string> listen = ToCivetwebListen(listen_address); listen.ok()) {
    // Every interface ("PORT", "+PORT", "[::]:PORT"): localhost reaches it.
    const size_t colon = listen->rfind(':');
    if (colon != std::string::npos && !absl::StartsWith(*listen, "[::]:")) {
      host = listen->substr(0, colon);
    }
  }
  return absl::StrCat(tls ? "https://" : "http://", host, ":", port, "/");
}

namespace {

// The socket address of civetweb's form of a listen address ("PORT",
// "+PORT", "A.B.C.D:PORT" or "[V6]:PORT"); *dual_stack for "+PORT".
socklen_t ListenSockaddr(const std::string& listen, sockaddr_storage* storage, bool* dual_stack) {
  memset(storage, 0, sizeof(*storage));
  *dual_stack = absl::StartsWith(listen, "+");
  const size_t colon = listen.rfind(':');
  int port = 0;
  (void)absl::SimpleAtoi(
      colon == std::string::npos ? listen.substr(*dual_stack ? 1 : 0) : listen.substr(colon + 1),
      &port);
  if (*dual_stack || absl::StartsWith(listen, "[")) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    v6->sin6_addr = in6addr_any;
    if (!*dual_stack) inet_pton(AF_INET6, listen.substr(1, colon - 2).c_str(), &v6->sin6_addr);
    return sizeof(sockaddr_in6);
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(storage);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  v4->sin_addr.s_addr = htonl(INADDR_ANY);
  if (colon != std::string::npos)
    inet_pton(AF_INET, listen.substr(0, colon).c_str(), &v4->sin_addr);
  return sizeof(sockaddr_in);
}

}  // namespace

absl::Status CheckCanListen(absl::string_view listen_address) {
  absl::StatusOr<std::string> listen = ToCivetwebListen(listen_address);
  if (!listen.ok()) return listen.status();
  sockaddr_storage address;
  bool dual_stack = false;
  const socklen_t length = ListenSockaddr(*listen, &address, &dual_stack);
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket()");
  const int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof(one));
  }
  const int result = bind(fd, reinterpret_cast<sockaddr*>(&address), length);
  const int error = errno;
  close(fd);
  if (result == 0) return absl::OkStatus();
  if (error == EADDRINUSE) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address,
                     ": the address is already in use; stop the other process or choose another "
                     "--web.listen-address"));
  }
  if (error == EADDRNOTAVAIL) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address,
                     ": no interface of this host has that address; use :PORT or 127.0.0.1:PORT"));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", listen_address, ": ", strerror(error)));
}

HttpServer::HttpServer(const Options& options, std::vector<HttpRoute> routes) : options_(options) {
  for (HttpRoute& route : routes) {
    std::string path = route.path;
    routes_.emplace(std::move(path), std::move(route));
  }
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const Options& options,
                                                              std::vector<HttpRoute> routes) {
  absl::StatusOr<std::string> listen = ToCivetwebListen(options.listen_address);
  if (!listen.ok()) return listen.status();
  if (options.tls) {
    if (absl::Status tls = CanServeTls(); !tls.ok()) return tls;
    *listen += "s";  // civetweb's mark of a TLS port
  }

  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(routes)));
  const std::string threads = absl::StrCat(options.threads);
  const std::string timeout = absl::StrCat(absl::ToInt64Milliseconds(options.request_timeout));
  const std::string keep_alive =
      absl::StrCat(absl::ToInt64Milliseconds(options.keep_alive_timeout));
  const std::string max_header = absl::StrCat(options.max_header_bytes);
  const char* config[] = {"listening_ports", listen->c_str(), "num_threads", threads.c_str(),
                          "request_timeout_ms", timeout.c_str(), "enable_keep_alive", "yes",
                          // Head and body go out in two writes; without this
                          // a keep-alive reply's body waits for the client's
                          // delayed ACK (about 40 ms).
                          "tcp_nodelay", "1", "keep_alive_timeout_ms", keep_alive.c_str(),
                          "max_request_size", max_header.c_str(), nullptr};
  struct mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = LogMessage;
  if (options.tls) callbacks.init_ssl = InitTls;

  std::string failure;
  {
    std::lock_guard<std::mutex> lock(start_log_mutex);
    start_log = &failure;
  }
  server->context_ = mg_start(&callbacks, server.get(), config);
  {
    std::lock_guard<std::mutex> lock(start_log_mutex);
    start_log = nullptr;
  }
  if (server->context_ == nullptr) {
    std::string hint = absl::StrContains(failure, "98") || absl::StrContains(failure, "in use")
                           ? ": the address is already in use; stop the other "
                             "process or choose another --web.listen-address"
                           : "";
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address, hint,
                                               failure.empty() ? "" : " (", failure,
                                               failure.empty() ? "" : ")"));
  }
  mg_set_request_handler(server->context_, "/", HandleRequest, server.get());

  struct mg_server_port ports[4];
  memset(ports, 0, sizeof(ports));
  if (mg_get_server_ports(server->context_, 4, ports) > 0) server->port_ = ports[0].port;
  return server;
}

bool HttpServer::ConfigureTls(void* ssl_ctx) {
  const absl::Status configured = options_.tls->Configure(static_cast<SSL_CTX*>(ssl_ctx));
  if (!configured.ok()) {
    std::lock_guard<std::mutex> lock(start_log_mutex);
    if (start_log && start_log->empty()) *start_log = std::string(configured.message());
  }
  return configured.ok();
}

HttpServer::~HttpServer() {
  if (context_) mg_stop(context_);
}

int HttpServer::Dispatch(struct mg_connection* connection) {
  const struct mg_request_info* info = mg_get_request_info(connection);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  request.remote_address = WithoutV4Mapping(info->remote_addr);
  request.from_loopback = IsLoopback(request.remote_address.c_str());
  // civetweb keeps the first MG_MAX_HEADERS headers and drops the rest
  // unread, Content-Length or Authorization among them: refuse instead.
  if (info->num_headers >= MG_MAX_HEADERS) {
    SendResponse(connection,
                 {431,
                  "text/plain; charset=utf-8",
                  absl::StrFormat("more than %d header fields\n", MG_MAX_HEADERS - 1),
                  {}},
                 options_.response_headers);
    return 431;
  }
  for (int i = 0; i < info->num_headers; ++i) {
    request.headers[absl::AsciiStrToLower(info->http_headers[i].name)] =
        info->http_headers[i].value;
  }

  // Before routing and before reading a body: without credentials nothing
  // is read, and not even which paths exist is revealed.
  if (options_.authorize && !options_.open_paths.contains(request.path) &&
      !options_.authorize(request)) {
    SendResponse(connection,
                 {401,
                  "text/plain; charset=utf-8",
                  "401 Unauthorized\n",
                  {{"WWW-Authenticate", absl::StrCat("Basic realm=\"", options_.realm, "\"")}}},
                 options_.response_headers);
    return 401;
  }
  auto route = routes_.find(request.path);
  if (route == routes_.end()) {
    SendResponse(
        connection,
        {404, "text/plain; charset=utf-8", absl::StrCat("no such page: ", request.path, "\n"), {}},
        options_.response_headers);
    return 404;
  }
  if (info->content_length > static_cast<long long>(options_.max_body_bytes)) {
    SendResponse(connection,
                 {413,
                  "text/plain; charset=utf-8",
                  absl::StrFormat("request body over %d bytes\n", options_.max_body_bytes),
                  {}},
                 options_.response_headers);
    return 413;
  }
  if (info->content_length > 0) {
    request.body.resize(info->content_length);
    size_t got = 0;
    while (got < request.body.size()) {
      int n = mg_read(connection, &request.body[got], request.body.size() - got);
      if (n <= 0) break;
      got += n;
    }
    request.body.resize(got);
  }

  if (route->second.stream) {
    std::string head =
        absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: ", route->second.stream_content_type,
                     "\r\nCache-Control: no-store\r\nConnection: close\r\n"
                     "X-Content-Type-Options: nosniff\r\n");
    for (const auto& [name, value] : options_.response_headers) {
      absl::StrAppend(&head, name, ": ", value, "\r\n");
    }
    head += "\r\n";
    mg_write(connection, head.data(), head.size());
    CivetwebStream stream(connection);
    route->second.stream(request, stream);
    return 200;
  }
  HttpResponse response = route->second.handler(request);
  SendResponse(connection, response, options_.response_headers);
  return response.status;
}

}  // namespace geoip
